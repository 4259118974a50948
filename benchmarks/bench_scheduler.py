"""The daily DAG through a real scheduler at 1, 2 and 4 partitions: time per task and stage, and
the scheduler's overhead.

For each size (transactions; size/10 accounts over 10 days) the data is generated once; then for
each partition count a fresh Airflow 3 deployment (tests/airflow_cluster.py: LocalExecutor with
`--parallelism` task processes, default one per core and at least 2, PostgreSQL metadata,
scheduler, DAG processor and API server on loopback) runs flows87_daily once, triggered through
the REST API. From the API's task instances it reports:
  - each task's wall time, start and end (seconds from the run's start; mapped tasks per part)
    and the peak RSS of its task process (sampled from /proc every 0.2 s),
  - each stage's wall time (first start to last end of its tasks) and task seconds (summed),
  - the run's wall time (the DAG run's start to end), the critical path (the longest chain of
    task durations through the DAG, a mapped task counting as its slowest part: the run's time
    with free slots and no scheduler), and the overhead = wall - critical path,
  - the queueing delay of every task instance: from the end of its last upstream task (the
    run's start for the first) to its start, split into scheduling (until the scheduler queued
    it) and executor start-up (queued to running; includes waiting for a free slot when parts
    outnumber the slots).
The published cases of every partition count must be the same bytes (`cases_sha256`).
Results in WORKDIR/results.json, and a markdown table on stdout.

`--executor celery` runs the CeleryExecutor instead (`--workers` Celery workers of concurrency 1,
Redis as broker; `--parallelism` then only caps the scheduler's queued tasks), with the case store
on a PostgreSQL database of the same server, as a distributed deployment requires; it needs
the `celery` extra and Debian's redis-server (scripts/system-deps.sh installs it).

    bash benchmarks/run.sh benchmarks/bench_scheduler.py --sizes 10000000 [--partitions 1 2 4] \
        [--files 10]
    FLOWS87_EXTRAS="test bench celery" source scripts/env.sh &&
        python benchmarks/bench_scheduler.py --executor celery --sizes 1000000 --partitions 4
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import shutil
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench_ingest import split
from harness import load, synth_input, write_results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from airflow_cluster import AirflowCluster, AirflowError, parse_time, process_tree  # noqa: E402
from postgres import acquire, release  # noqa: E402

from flows87.pipeline.plan import dag_plan  # noqa: E402

DAG_ID = "flows87_daily"
DAYS = 10
FIRST = date(2026, 1, 1)
LOGICAL = datetime(2026, 1, 11, tzinfo=UTC)  # the midnight run after the data's last day
PLAN = dag_plan()  # the tasks the DAG runs (the graph stage per pattern group)
STAGE = {s.name: s.stage for s in PLAN}
ORDER = {s.name: i for i, s in enumerate(PLAN)}


class TreeMemory(threading.Thread):
    """Peak RSS (MB) of every process under the deployment's processes, by pid."""

    def __init__(self, cluster: AirflowCluster, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.cluster, self.period = cluster, period
        self.peaks: dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.period):
            for proc in list(self.cluster.procs.values()):
                for pid in process_tree(proc.pid):
                    self.peaks[pid] = max(self.peaks.get(pid, 0), _rss_mb(pid))

    def stop(self) -> dict[int, int]:
        self._done.set()
        self.join()
        return self.peaks


def _rss_mb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")) // 1024
    except (OSError, StopIteration):
        return 0


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds(), 2) if a and b else None


def timeline(
    run: dict[str, Any], tis: list[dict[str, Any]], upstream: dict[str, set[str]]
) -> dict[str, Any]:
    """Per task instance and stage timings, the critical path and the scheduler's overhead."""
    run_start, run_end = parse_time(run["start_date"]), parse_time(run["end_date"])
    assert run_start and run_end
    start = {id(t): parse_time(t["start_date"]) for t in tis}
    end = {id(t): parse_time(t["end_date"]) for t in tis}
    task_end: dict[str, datetime] = {}
    longest: dict[str, float] = {}
    for t in tis:
        e = end[id(t)]
        if e is not None:
            task_end[t["task_id"]] = max(task_end.get(t["task_id"], e), e)
        longest[t["task_id"]] = max(longest.get(t["task_id"], 0.0), float(t["duration"] or 0))
    rows = []
    for t in sorted(tis, key=lambda t: (ORDER.get(t["task_id"], 99), t["map_index"])):
        ups = [task_end[u] for u in upstream.get(t["task_id"], ()) if u in task_end]
        ready = max(ups) if ups else run_start
        queued = parse_time(t.get("queued_when"))
        rows.append(
            {
                "task": t["task_id"],
                "part": t["map_index"] if t["map_index"] >= 0 else None,
                "state": t["state"],
                "seconds": round(float(t["duration"] or 0), 2),
                "start_s": _seconds(run_start, start[id(t)]),  # from the run's start
                "end_s": _seconds(run_start, end[id(t)]),
                "queue_s": _seconds(ready, start[id(t)]),
                "scheduling_s": _seconds(ready, queued),
                "executor_s": _seconds(queued, start[id(t)]),
                "pid": t.get("pid"),
            }
        )
    # the longest chain of task durations (a mapped task: its slowest part)
    path_s: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for task in sorted(longest, key=lambda n: ORDER.get(n, 99)):
        before = max(upstream.get(task, ()), key=lambda u: path_s.get(u, 0.0), default=None)
        path_s[task] = longest[task] + (path_s.get(before, 0.0) if before else 0.0)
        via[task] = before
    tail = max(path_s, key=lambda n: path_s[n])
    critical_s, chain = path_s[tail], []
    last: str | None = tail
    while last is not None:
        chain.append(last)
        last = via[last]
    wall = (run_end - run_start).total_seconds()
    queues = [r["queue_s"] for r in rows if r["queue_s"] is not None]
    stages: dict[str, dict[str, Any]] = {}
    for t in tis:
        st = stages.setdefault(
            STAGE.get(t["task_id"], t["task_id"]), {"first": None, "last": None, "task_s": 0.0}
        )
        s, e = start[id(t)], end[id(t)]
        st["first"] = min(x for x in (st["first"], s) if x) if s else st["first"]
        st["last"] = max(x for x in (st["last"], e) if x) if e else st["last"]
        st["task_s"] = round(st["task_s"] + float(t["duration"] or 0), 2)
    return {
        "wall_s": round(wall, 1),
        "critical_path_s": round(critical_s, 1),
        "overhead_s": round(wall - critical_s, 1),
        "critical_path": chain[::-1],
        "queue_mean_s": round(sum(queues) / len(queues), 2) if queues else None,
        "queue_max_s": max(queues) if queues else None,
        "queue_on_critical_path_s": round(
            sum(
                min(r["queue_s"] for r in rows if r["task"] == task and r["queue_s"] is not None)
                for task in chain
            ),
            1,
        ),
        "stages": {
            name: {"wall_s": _seconds(v["first"], v["last"]), "task_s": v["task_s"]}
            for name, v in stages.items()
        },
        "tasks": rows,
    }


def one_run(
    server: Any,
    data: Path,
    workdir: Path,
    partitions: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    database = server.new_database()
    home = workdir / "flows87"
    env = {"FLOWS87_HOME": str(home), "FLOWS87_SCHEDULE": "none"}
    store = None
    if args.executor == "celery":  # distributed: the case store may not be a SQLite file
        store = server.new_database()
        env.update(FLOWS87_DB_URL=server.url(store), FLOWS87_AUDIT_KEY=secrets.token_hex(32))
    try:
        with AirflowCluster(
            workdir,
            server.url(database),
            parallelism=args.parallelism,
            env=env,
            executor=args.executor,
            workers=args.workers,
        ) as airflow:
            airflow.wait_for_dag(DAG_ID)
            airflow.unpause(DAG_ID)
            memory = TreeMemory(airflow)
            memory.start()
            before = load()
            conf = {"source": str(data), "lookback_days": DAYS, "partitions": partitions}
            t0 = time.perf_counter()
            run_id = airflow.trigger(DAG_ID, LOGICAL, conf)
            try:
                run = airflow.wait_for_run(DAG_ID, run_id, args.timeout)
            finally:
                peaks = memory.stop()
            observed = time.perf_counter() - t0
            tis = airflow.task_instances(DAG_ID, run_id)
            tasks = airflow.api("GET", f"dags/{DAG_ID}/tasks")["tasks"]
            upstream: dict[str, set[str]] = {t["task_id"]: set() for t in tasks}
            for t in tasks:
                for down in t["downstream_task_ids"]:
                    upstream[down].add(t["task_id"])
            result = timeline(run, tis, upstream)
            hosts = {(t["task_id"], t["map_index"]): t["hostname"] for t in tis}
            for row in result["tasks"]:
                row["peak_rss_mb"] = peaks.get(row.pop("pid") or -1)
                row["host"] = hosts.get((row["task"], -1 if row["part"] is None else row["part"]))
            published = home / "published" / "cases.parquet"
            result.update(
                partitions=partitions,
                executor=args.executor,
                workers=args.workers if args.executor == "celery" else None,
                parallelism=airflow.parallelism,
                trigger_to_done_s=round(observed, 1),
                load_before=before,
                load_after=load(),
                cases_sha256=hashlib.sha256(published.read_bytes()).hexdigest(),
            )
            return result
    finally:
        server.drop_database(database)
        if store is not None:
            server.drop_database(store)


def table(results: dict[str, Any]) -> str:
    stages = list(dict.fromkeys(s.stage for s in PLAN))
    head = ["size", "parts", "wall s", "critical path s", "overhead s", "queue mean/max s"]
    head += [f"{s} s" for s in stages]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for size, by_parts in results.items():
        for parts, r in by_parts.items():
            if "failed" in r:
                lines.append(f"| {int(size):,} | {parts} | failed |" + " |" * (len(head) - 3))
                continue
            cells = [
                f"{int(size):,}",
                parts,
                r["wall_s"],
                r["critical_path_s"],
                r["overhead_s"],
                f"{r['queue_mean_s']} / {r['queue_max_s']}",
            ]
            cells += [(r["stages"].get(s) or {}).get("wall_s", "") for s in stages]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += ["", "| size | parts | mapped task | seconds per part | peak RSS MB per part |"]
    lines.append("|---|---|---|---|---|")
    for size, by_parts in results.items():
        for parts, r in by_parts.items():
            for task in ("features", "rules", "detectors") if "failed" not in r else ():
                mine = [x for x in r["tasks"] if x["task"] == task]
                secs = ", ".join(str(x["seconds"]) for x in mine)
                rss = ", ".join(str(x["peak_rss_mb"]) for x in mine)
                lines.append(f"| {int(size):,} | {parts} | {task} | {secs} | {rss} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--parallelism", type=int, default=None, help="default: cores, at least 2")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per DAG run")
    ap.add_argument("--executor", choices=("local", "celery"), default="local")
    ap.add_argument("--workers", type=int, default=2, help="Celery workers (--executor celery)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/flows87-scheduler-bench"))
    ap.add_argument(
        "--files",
        type=int,
        default=1,
        help="deliver the transactions as this many files of consecutive days (read and "
        "gated a task each)",
    )
    args = ap.parse_args()
    results: dict[str, Any] = {}
    server = acquire()
    try:
        for size in args.sizes:
            data = args.workdir / f"synth-{size}"
            synth_input(data, size // 10, DAYS, 1, start=FIRST)
            if args.files > 1:
                files = args.workdir / f"synth-{size}-files{args.files}"
                split(data, files, args.files, 0)
                data = files
            results[str(size)] = {}
            for parts in args.partitions:
                print(f"{size:,} transactions, {parts} partitions ...", flush=True)
                try:
                    r = one_run(server, data, args.workdir / f"deploy-{size}-p{parts}", parts, args)
                    print(f"  wall {r['wall_s']} s, overhead {r['overhead_s']} s", flush=True)
                except AirflowError as exc:  # keep the other partition counts' results
                    r = {"failed": str(exc)[:4000]}
                    print(f"  failed: {str(exc)[:1500]}", flush=True)
                results[str(size)][str(parts)] = r
                write_results(results, args.workdir / "results.json")
            digests = {r["cases_sha256"] for r in results[str(size)].values() if "failed" not in r}
            if len(digests) != 1:
                print(f"published cases differ between partition counts: {digests}")
    finally:
        release()
    write_results(results, args.workdir / "results.json")
    print(table(results))


if __name__ == "__main__":
    main()
