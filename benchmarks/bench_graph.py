"""The graph stage as the DAG runs it, each task in its own process: time, peak memory and rows.

Given a run directory whose earlier stages are done (transactions, accounts, features and the
rules stage's signals: e.g. `bench_run.py --step stage:...` up to rules, or a finished run), for
each partition count it links those inputs into WORKDIR/parts-N/, fixes the accounts'
partitions, and runs:
  - `graph_prime` (the tables every partition derives from the whole graph, once),
  - `graph_part` of every partition (the instances anchored at its accounts and the layering
    links through them: graph/anchored.py),
  - `merge_graph` (the layering chains grown on every partition's links, and the signals),
one process each under a memory guard, reporting each task's wall seconds, peak RSS and (for a
partition) the transactions it read. The merged signals of every count must be the same bytes
(`signals_sha256`): the partitioned stage equals the unpartitioned one.

    bash benchmarks/run.sh benchmarks/bench_graph.py --run /work/data/bench-run/run-5000000 \
        --partitions 1 4 [--workdir /tmp/flows87-graph-bench] [--max-rss-mb 20000] [--only K]

`--only K` runs only the first K partitions' tasks of each count (no merge): what one
partition task needs on an input too large to run every one of them here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import emit, guarded, step_command, write_results

INPUTS = ("transactions.parquet", "accounts.parquet", "features.parquet", "signals_rules.parquet")


def _job(run: Path) -> Any:
    from flows87.pipeline.job import Job
    from flows87.pipeline.stages.config import RunConfig
    from flows87.rundir import RunDir

    return Job(RunDir(run), RunConfig(), command="dag")


def _child(args: argparse.Namespace) -> None:
    from flows87.pipeline.stages import graph_groups

    job, t0 = _job(Path(args.run)), time.perf_counter()
    if args.step == "part":
        out = graph_groups.graph_part(job, int(args.arg))
    elif args.step == "prime":
        out = graph_groups.graph_prime(job)
    else:
        out = graph_groups.merge_graph(job)
    emit({**out, "wall_s": round(time.perf_counter() - t0, 2)})


def prepare(source: Path, run: Path, partitions: int) -> int:
    """Link the graph stage's inputs into `run` and fix `partitions` partitions of the accounts;
    the number of transactions."""
    import polars as pl

    from flows87.pipeline.stages.parts import assign

    run.mkdir(parents=True, exist_ok=True)
    for name in INPUTS:
        link = run / name
        if not link.exists():
            link.symlink_to((source / name).resolve())
    tx = pl.scan_parquet(run / "transactions.parquet")
    ids = pl.concat(
        [
            pl.scan_parquet(run / "accounts.parquet").select("account_id"),
            tx.select(pl.col("src_account").alias("account_id")),
            tx.select(pl.col("dst_account").alias("account_id")),
        ]
    ).collect()["account_id"]
    assign(ids, partitions).write_parquet(run / "partitions.parquet")
    return int(tx.select(pl.len()).collect().item())


def _task(run: Path, step: str, arg: str | None, max_rss_mb: int) -> dict[str, Any]:
    cmd = step_command(__file__, step, run=run, arg=arg)
    log = run / "logs" / f"{step}-{arg or 'all'}.log"
    log.parent.mkdir(exist_ok=True)
    res = guarded(cmd, log, 4 * 3600, max_rss_mb, lambda: step)
    out = log.with_suffix(".out").read_text().strip().splitlines()
    if res["exit_code"] != 0 or not out:
        raise SystemExit(f"{step} {arg or ''} failed ({res['killed'] or res['exit_code']}): {log}")
    answer = json.loads(out[-1])
    record = run / "stages" / f"graph_part-{int(arg):04d}.json" if step == "part" else None
    if record is not None and arg is not None and record.exists():
        answer["transactions_read"] = json.loads(record.read_text())["counts"]["transactions_read"]
    return {**answer, "peak_rss_mb": res["peak_rss_mb"], "process_s": res["wall_s"]}


def bench(
    source: Path, work: Path, partitions: int, max_rss_mb: int, only: int | None = None
) -> dict[str, Any]:
    run = work / f"parts-{partitions}"
    rows = prepare(source, run, partitions)
    tasks: dict[str, dict[str, Any]] = {}
    tasks["graph_prime"] = _task(run, "prime", None, max_rss_mb)
    print(f"  graph_prime: {tasks['graph_prime']}", flush=True)
    if only is not None:  # a sample of the partitions: their sizes, no merge to compare
        for part in range(min(only, partitions)):
            tasks[f"graph_part {part}"] = _task(run, "part", str(part), max_rss_mb)
            print(f"  graph_part {part}: {tasks[f'graph_part {part}']}", flush=True)
        return {"transactions": rows, "tasks": tasks, "signals_sha256": None}
    for part in range(partitions):
        tasks[f"graph_part {part}"] = _task(run, "part", str(part), max_rss_mb)
        print(f"  graph_part {part}: {tasks[f'graph_part {part}']}", flush=True)
    tasks["merge_graph"] = _task(run, "merge", None, max_rss_mb)
    digest = hashlib.sha256((run / "signals_graph.parquet").read_bytes()).hexdigest()
    return {"transactions": rows, "tasks": tasks, "signals_sha256": digest}


def print_table(results: dict[str, Any]) -> None:
    print("| partitions | task | wall s | peak RSS MB | transactions read |")
    print("|---|---|---|---|---|")
    for n, res in results.items():
        for name, t in res["tasks"].items():
            read = t.get("transactions_read")
            shown = f"{read:,} ({read / res['transactions']:.0%})" if read is not None else ""
            print(f"| {n} | {name} | {t['wall_s']} | {t['peak_rss_mb']:,} | {shown} |")
    digests = {res["signals_sha256"] for res in results.values() if res["signals_sha256"]}
    print(f"\nsignals_graph.parquet the same at every partition count: {len(digests) <= 1}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a run directory with the graph stage's inputs")
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--workdir", default="/tmp/flows87-graph-bench")
    ap.add_argument("--max-rss-mb", type=int, default=20000)
    ap.add_argument(
        "--only", type=int, help="run only the first K partitions' tasks (sizing a large input)"
    )
    ap.add_argument("--step", choices=["prime", "part", "merge"], help=argparse.SUPPRESS)
    ap.add_argument("--arg", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        _child(args)
        return
    work = Path(args.workdir)
    results = {}
    for n in args.partitions:
        print(f"{n} partition(s):", flush=True)
        results[str(n)] = bench(Path(args.run), work, n, args.max_rss_mb, args.only)
    write_results(results, work / "results.json")
    print_table(results)
    if len({r["signals_sha256"] for r in results.values() if r["signals_sha256"]}) > 1:
        sys.exit("the merged signals differ between partition counts")


if __name__ == "__main__":
    main()
