"""Ingest as the DAG runs it, a task per input file, each task in its own process: time and peak
memory per task, against the one process of `flows87 run` (read, then gate_raw) on the same
files.

Given a canonical input folder (accounts.parquet and transactions.parquet: e.g. a `bench_run.py`
synth folder), for each file count N it writes the transactions as N files of consecutive days
(WORKDIR/files-N/transactions/<n>.parquet, the accounts beside them), then runs
  - `flows87 run`'s ingest: `read` and `gate_raw` in one process (WORKDIR/files-N/one/),
  - the DAG's tasks, one process each (WORKDIR/files-N/tasks/): `list_inputs`, `read_file` per
    file, `gate_accounts`, `gate_file` per file, `gate_raw` (the merge of the files' gates),
under a memory guard, reporting each one's wall seconds, CPU seconds and peak RSS. The
published transactions, accounts and quarantine of both must hold the same rows in the same
order.

    bash benchmarks/run.sh benchmarks/bench_ingest.py \
        --input /work/data/bench-run/synth-5000000 --files 1 10 [--resend 1000] \
        [--workdir /tmp/flows87-ingest]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from harness import emit, guarded, spawn, step_command, write_results

PUBLISHED = ("transactions.parquet", "accounts.parquet", "quarantine/raw_transactions.parquet")


def _job(run: Path, source: Path) -> Any:
    from flows87.pipeline.job import Job
    from flows87.pipeline.stages.config import RunConfig
    from flows87.rundir import RunDir

    return Job(RunDir(run), RunConfig(), source=str(source), command="bench")


def _child(args: argparse.Namespace) -> None:
    from flows87.pipeline.plan import step

    run, source = Path(args.run), Path(args.source)
    t0 = time.perf_counter()
    if args.step == "split":  # in a process of its own: a child's peak RSS starts from its parent's
        files, resend = (int(x) for x in str(args.arg).split(","))
        emit({"transactions": split(source, run, files, resend)})
        return
    if args.step == "digests":
        emit(_digests(run))
        return
    if args.step == "one":
        from flows87.pipeline.job import Job
        from flows87.pipeline.stages.config import RunConfig

        job = Job.local(run, RunConfig(), source=str(source))
        step("read").function()(job)
        out = step("gate_raw").function()(job)
    else:
        job = _job(run, source)
        fn = step(args.step).function()
        out = fn(job) if args.arg is None else fn(job, int(args.arg))
    small = dict(out) if isinstance(out, dict) else {"pieces": out}
    small.pop("warnings", None)
    emit({**small, "wall_s": round(time.perf_counter() - t0, 2)})


def split(source: Path, folder: Path, files: int, resend: int) -> int:
    """The input's transactions as `files` files of consecutive days (its accounts beside); the
    last file repeats the first `resend` rows of the first (a re-sent batch: each copy is
    quarantined as a repeat of the other, found across the files)."""
    import polars as pl

    if (folder / "transactions").is_dir() and (folder / "accounts.parquet").exists():
        return int(
            pl.scan_parquet(folder / "transactions" / "*.parquet").select(pl.len()).collect().item()
        )
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "transactions").mkdir(parents=True)
    (folder / "accounts.parquet").symlink_to((source / "accounts.parquet").resolve())
    tx = pl.scan_parquet(source / "transactions.parquet")
    days = tx.select(pl.col("ts").dt.date().unique().sort()).collect()["ts"].to_list()
    for i in range(files):
        mine = days[i * len(days) // files : (i + 1) * len(days) // files]
        rows = tx.filter(pl.col("ts").dt.date().is_in(mine))
        if i == files - 1 and resend:
            first = days[: len(days) // files]
            again = tx.filter(pl.col("ts").dt.date().is_in(first)).head(resend)
            rows = pl.concat([rows, again])
        rows.sink_parquet(folder / "transactions" / f"{i:04d}.parquet")
    return int(
        pl.scan_parquet(folder / "transactions" / "*.parquet").select(pl.len()).collect().item()
    )


def _task(run: Path, source: Path, step: str, arg: int | None, max_rss_mb: int) -> dict[str, Any]:
    cmd = step_command(__file__, step, run=run, source=source, arg=arg)
    log = run.parent / "logs" / f"{run.name}-{step}-{'all' if arg is None else arg}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    res = guarded(cmd, log, 4 * 3600, max_rss_mb, lambda: step)
    out = log.with_suffix(".out").read_text().strip().splitlines()
    if res["exit_code"] != 0 or not out:
        raise SystemExit(f"{step} {arg if arg is not None else ''} failed: {log}")
    answer = json.loads(out[-1])
    return {
        "wall_s": answer["wall_s"],
        "cpu_s": res["cpu_s"],
        "peak_rss_mb": res["peak_rss_mb"],
        "process_s": res["wall_s"],
    }


def _digests(run: Path) -> dict[str, str]:
    """Each published table's rows and a digest of its rows in order (an eager write and a
    streamed one lay the same rows out in other row groups, so the files' bytes differ)."""
    import polars as pl

    out = {}
    for name in PUBLISHED:
        if not (run / name).exists():
            out[name] = ""
            continue
        rows = pl.scan_parquet(run / name).with_row_index("__i")
        digest = rows.select(
            pl.len(),
            (pl.struct(pl.all().exclude("__i")).hash(7) ^ pl.col("__i").hash(3))
            .sum()
            .alias("digest"),
        ).collect()
        out[name] = f"{digest['len'][0]}:{digest['digest'][0]}"
    return out


def bench(source: Path, work: Path, files: int, resend: int, max_rss_mb: int) -> dict[str, Any]:
    folder = work / f"files-{files}-resend{resend}"
    cmd = step_command(
        __file__, "split", run=folder / "input", source=source, arg=f"{files},{resend}"
    )
    rows = int(spawn(cmd, "split")["transactions"])
    one, tasks_run = folder / "one", folder / "tasks"
    for run in (one, tasks_run):
        shutil.rmtree(run, ignore_errors=True)
    inp = folder / "input"
    tasks: dict[str, dict[str, Any]] = {
        "one process: read + gate_raw": _task(one, inp, "one", None, max_rss_mb)
    }
    print(f"  one process: {tasks['one process: read + gate_raw']}", flush=True)
    tasks["list_inputs"] = _task(tasks_run, inp, "list_inputs", None, max_rss_mb)
    for i in range(files):
        tasks[f"read_file {i}"] = _task(tasks_run, inp, "read_file", i, max_rss_mb)
    tasks["gate_accounts"] = _task(tasks_run, inp, "gate_accounts", None, max_rss_mb)
    for i in range(files):
        tasks[f"gate_file {i}"] = _task(tasks_run, inp, "gate_file", i, max_rss_mb)
    tasks["gate_raw"] = _task(tasks_run, inp, "gate_raw", None, max_rss_mb)
    for name, t in tasks.items():
        print(f"  {name}: {t}", flush=True)
    digests = [
        spawn(step_command(__file__, "digests", run=r, source=inp), "digests")
        for r in (one, tasks_run)
    ]
    for d in digests:
        for key in ("load_before", "load_after", "process_s", "peak_rss_mb", "cpu_s"):
            d.pop(key, None)
    same = digests[0] == digests[1]
    held = digests[1][PUBLISHED[2]]
    quarantined = int(held.split(":")[0]) if held else 0
    return {"transactions": rows, "quarantined": quarantined, "tasks": tasks, "same_rows": same}


def print_table(results: dict[str, Any]) -> None:
    print("| files | task | wall s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for n, res in results.items():
        for name, t in res["tasks"].items():
            print(f"| {n} | {name} | {t['wall_s']} | {t['cpu_s']} | {t['peak_rss_mb']:,} |")
    for n, res in results.items():
        print(
            f"\n{n} file(s), {res['quarantined']:,} rows quarantined: the tasks publish the one process's rows: {res['same_rows']}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="a canonical input folder (accounts and transactions)")
    ap.add_argument("--files", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--workdir", default="/tmp/flows87-ingest-bench")
    ap.add_argument(
        "--resend", type=int, default=1000, help="rows of the first file the last repeats"
    )
    ap.add_argument("--max-rss-mb", type=int, default=20000)
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--run", help=argparse.SUPPRESS)
    ap.add_argument("--source", help=argparse.SUPPRESS)
    ap.add_argument("--arg", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        _child(args)
        return
    if not args.input:
        ap.error("--input is required")
    work = Path(args.workdir)
    results = {}
    for n in args.files:
        print(f"{n} file(s):", flush=True)
        results[str(n)] = bench(Path(args.input), work, n, args.resend, args.max_rss_mb)
    write_results(results, work / "results.json")
    print_table(results)
    if not all(r["same_rows"] for r in results.values()):
        sys.exit("the tasks' tables differ from the one process's")


if __name__ == "__main__":
    main()
