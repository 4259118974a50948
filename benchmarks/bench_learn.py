"""The learned scorer's learning curve (issue 16): today / learned / blend / GFP + XGBoost.

For each data set, the pipeline runs on consecutive periods of `--period-days` (5: the rules'
windows need days of history; on 1-day runs of the synthetic data today's ranking is near
random): the last is the report run; the `--tune-runs` before it are the tuning runs. Simulated
investigators review the tuning runs' cases in time and rank order, deciding each case's
accounts by the tuning period's truth (flows87/research/learning/labels.py); after 10, 50, 200,
1,000 cases (capped by the cases there are) and with every label of the tuning runs, the learned
scorer (both methods, `xgboost` and `xgbod`) is trained on the tuning runs' account matrices and
scores the report run; the GFP + XGBoost baseline is trained on the same labels over GFP's
account features of the same runs. Metrics: PR-AUC and precision at the `--budget` alert budget
over the report run's active accounts. No run sees a case store or a published model
(FLOWS87_HOME is the work folder's own), so "today" is the rules + anomaly ranking alone.

Data sets: `synth` (`flows87 synth`, --accounts over --days, generated into the work folder)
and `amlgentex` (an AMLGentex generator output, --amlgentex, default the first of
/work/data/amlgentex*/gx10k-all-s1 holding temporal/tx_log; skipped when none).

    bash benchmarks/run.sh benchmarks/bench_learn.py                       # both data sets
    bash benchmarks/run.sh benchmarks/bench_learn.py --data synth --no-gfp
    options: [--accounts 30000] [--days 40] [--seed 1] [--budget 0.01] [--period-days 5]
             [--tune-runs 7] [--unreviewed 50000] [--amlgentex PATH] [--amlgentex-period-days 7]
             [--workdir /tmp/flows87-learn-bench] [--gfp-timeout 1800]
Writes WORKDIR/learn.md and learn.json (and each data set's curve.json).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import load, synth_input, usage, write_results


def periods(
    source: Path, fmt: str | None, days: float, tune_runs: int
) -> list[tuple[datetime, datetime]]:
    """Consecutive periods of `days` ending at the input's last day (midnight UTC): up to
    `tune_runs` tuning periods, then the report period."""
    from flows87.research.bench import time_range

    lo, hi, _ = time_range(source, fmt)
    step = timedelta(days=days)
    end = hi.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(1)
    first = lo.astimezone(UTC)
    out = []
    while len(out) < tune_runs + 1 and end - step >= first - timedelta(hours=1):
        out.append((end - step, end))
        end -= step
    if len(out) < 2:
        raise SystemExit(f"{source}: too short for two periods of {days:g} days")
    return out[::-1]


def run_periods(
    source: Path, fmt: str | None, spans: list[tuple[datetime, datetime]], folder: Path
) -> list[Path]:
    """One `flows87 run` per period (reused when its run.json exists)."""
    from flows87.pipeline.run import run
    from flows87.pipeline.stages.config import RunConfig

    dirs = []
    for start, end in spans:
        d = folder / f"run-{start:%Y%m%dT%H}"
        if not (d / "run.json").exists():
            t0 = time.perf_counter()
            cfg = RunConfig(
                format=fmt, select_interval=True, interval_start=start, interval_end=end
            )
            run(source, d, cfg)
            print(f"  run {start:%Y-%m-%d %H:%M} {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        dirs.append(d)
    return dirs


def one(
    name: str, source: Path, fmt: str | None, days: float, args: argparse.Namespace
) -> dict[str, Any]:
    from flows87.research.learning import learning_curve, markdown

    folder = args.workdir / name
    spans = periods(source, fmt, days, args.tune_runs)
    print(
        f"{name}: {len(spans) - 1} tuning runs and a report run of {days:g} days",
        file=sys.stderr,
    )
    dirs = run_periods(source, fmt, spans, folder / "runs")
    t0 = time.perf_counter()
    doc = learning_curve(
        dirs[:-1],
        dirs[-1],
        budget=args.budget,
        gfp=not args.no_gfp,
        gfp_timeout=args.gfp_timeout,
        unreviewed=args.unreviewed,
        say=lambda m: print(f"  {m}", file=sys.stderr),
    )
    doc["data"] = {
        "name": name,
        "input": str(source),
        "period_days": days,
        "periods": [[a.isoformat(), b.isoformat()] for a, b in spans],
    }
    doc["curve_seconds"] = round(time.perf_counter() - t0, 1)
    write_results(doc, folder / "curve.json")
    (folder / "curve.md").write_text(markdown(doc, f"Learning curve: {name}"))
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["synth", "amlgentex"])
    ap.add_argument("--accounts", type=int, default=30_000)
    ap.add_argument("--days", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0.01)
    ap.add_argument("--period-days", type=float, default=5.0)
    ap.add_argument("--tune-runs", type=int, default=7)
    ap.add_argument("--amlgentex", type=Path, default=None)
    ap.add_argument("--amlgentex-period-days", type=float, default=7.0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/flows87-learn-bench"))
    ap.add_argument("--no-gfp", action="store_true", help="no GFP baseline (no snapml needed)")
    ap.add_argument("--gfp-timeout", type=float, default=1800.0)
    ap.add_argument(
        "--unreviewed",
        type=int,
        default=50000,
        help="also train on the case labels plus this many accounts no case named, as negatives "
        "(the daily job's learning.yaml presumed_negatives)",
    )
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ["FLOWS87_HOME"] = str(args.workdir / "home")  # no store, no published model
    os.environ.pop("FLOWS87_DB_URL", None)
    os.environ.setdefault("MPLCONFIGDIR", str(args.workdir / ".matplotlib"))
    from flows87.research.learning import markdown

    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_before": load()}}
    t0 = time.perf_counter()
    if "synth" in args.data:
        name = f"synth-{args.accounts}x{args.days}-s{args.seed}"
        data = args.workdir / name / "data"
        synth_input(data, args.accounts, args.days, args.seed)
        results[name] = one(name, data, None, args.period_days, args)
    if "amlgentex" in args.data:
        found = (
            [args.amlgentex]
            if args.amlgentex
            else [
                Path(p).parent.parent
                for p in sorted(glob.glob("/work/data/amlgentex*/gx10k-all-s1/temporal/tx_log.*"))
            ]
        )
        found = [p for p in found if p and p.exists()]
        if found:
            name = f"amlgentex-{found[0].name}"
            results[name] = one(name, found[0], "amlgentex", args.amlgentex_period_days, args)
        else:
            print("amlgentex: no generator output found; skipped", file=sys.stderr)
    results["machine"].update(
        load_after=load(),
        seconds=round(time.perf_counter() - t0, 1),
        peak_rss_mb=usage()["peak_rss_mb"],
    )
    write_results(results, args.workdir / "learn.json")
    text = "\n\n".join(
        markdown(doc, f"Learning curve: {key}") for key, doc in results.items() if key != "machine"
    )
    (args.workdir / "learn.md").write_text(text + "\n")
    print(text)
    print(f"\nmachine {json.dumps(results['machine'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
