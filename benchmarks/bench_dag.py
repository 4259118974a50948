"""Airflow's overhead: the daily DAG (`airflow dags test`) against `flows87 run` on the same data.

For each size (transactions; size/10 accounts over 10 days) it generates the data once, then
times, each in a fresh subprocess:
  run        `flows87 run DATA --out RUN`
  dag        `airflow dags test flows87_daily` on the interval covering the data (1 partition)
  dag-pN     the same with `partitions: N` (mapped tasks run one after another in dags test)
with a fresh SQLite metadata DB per DAG run (migration and DAG parsing are set-up, not timed).
Wall time, CPU time and the peak RSS of the largest process; each DAG task's own time from the
run directory's stage records. Results in WORKDIR/results.json.

    bash benchmarks/run.sh benchmarks/bench_dag.py --sizes 1000000 [--partitions 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from harness import by_stage, measure, stage_records, synth_input, write_results

from flows87.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAYS = 10
FIRST = date(2026, 1, 1)
LOGICAL = "2026-01-11"  # the midnight run after the data's last day; its window is the 10 days


def stage_seconds(run_dir: Path) -> dict[str, float]:
    return {k: round(v["seconds"], 1) for k, v in by_stage(stage_records(run_dir)).items()}


def ensure_data(size: int, folder: Path) -> None:
    synth_input(folder, size // 10, DAYS, 1, start=FIRST)


def airflow_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FLOWS87_HOME": str(home / "flows87"),
        "MPLCONFIGDIR": str(home / "mpl"),
    }


def dag_run(data: Path, home: Path, partitions: int) -> dict[str, Any]:
    shutil.rmtree(home, ignore_errors=True)
    (home / "airflow").mkdir(parents=True)
    env = airflow_env(home)
    airflow = str(BIN / "airflow")
    for setup in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([airflow, *setup], env=env, capture_output=True, check=True)
    conf = json.dumps({"source": str(data), "lookback_days": DAYS, "partitions": partitions})
    result = measure(
        [airflow, "dags", "test", "flows87_daily", LOGICAL, "-c", conf], env, home / "log"
    )
    state = (
        subprocess.run(
            [airflow, "dags", "state", "flows87_daily", LOGICAL],
            env=env,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()
    )
    result["ok"] = result["ok"] and bool(state) and state[-1].startswith("success")
    runs = sorted((home / "flows87" / "runs").glob("*"))
    if runs:
        result["stages"] = stage_seconds(runs[-1])
        result["cases"] = _cases(runs[-1])
    return result


def _cases(run_dir: Path) -> int | None:
    import polars as pl

    path = RunDir(run_dir).cases
    return pl.read_parquet(path).height if path.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/flows87-dag-bench"))
    args = ap.parse_args()
    results: dict[str, Any] = {}
    for size in args.sizes:
        data = args.workdir / f"synth-{size}"
        ensure_data(size, data)
        row: dict[str, Any] = {}
        run_dir = args.workdir / f"run-{size}"
        shutil.rmtree(run_dir, ignore_errors=True)
        env = {**os.environ, "MPLCONFIGDIR": str(args.workdir / "mpl")}
        row["run"] = measure(
            [str(BIN / "flows87"), "run", str(data), "--out", str(run_dir), "--quiet"],
            env,
            args.workdir / f"run-{size}.log",
        )
        row["run"]["stages"] = stage_seconds(run_dir)
        row["run"]["cases"] = _cases(run_dir)
        row["dag"] = dag_run(data, args.workdir / f"dag-{size}", 1)
        if args.partitions > 1:
            row[f"dag-p{args.partitions}"] = dag_run(
                data, args.workdir / f"dag-{size}-p{args.partitions}", args.partitions
            )
        results[str(size)] = row
        print(f"\n{size:,} transactions")
        print(
            f"{'how':<10} {'ok':<5} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'cases':>6}  stages (s)"
        )
        for how, r in row.items():
            print(
                f"{how:<10} {r['ok']!s:<5} {r['wall_s']:>7} {r['cpu_s']:>7} {r['peak_rss_mb']:>8}"
                f" {r.get('cases')!s:>6}  {r.get('stages')}"
            )
        base = row["run"]["wall_s"]
        print(f"Airflow overhead: {row['dag']['wall_s'] - base:+.1f} s over flows87 run ({base} s)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    write_results(results, args.workdir / "results.json")


if __name__ == "__main__":
    main()
