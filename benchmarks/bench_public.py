"""The public benchmark table: flows87 against IBM's Graph Feature Preprocessor + IForest.

Generates `--accounts` accounts over `--days` days of labelled synthetic transactions
(`flows87.research.synth.generate`; 500,000 accounts over 10 days is about 5M transactions) into
WORKDIR/public-ACCOUNTSxDAYS-sSEED (reused when there), then runs `flows87 bench` on it with the
GFP baseline: report on the time range after `--split` of it, tune on the period of the same
length just before (`--tune-on all`: everything before the cut), alert budget `--budget` of
the report period's active accounts; GFP computes `--gfp-patterns` (default: fan, degree,
scatter-gather and vertex statistics, no temporal cycles; see `flows87 bench --help`). Prints the table (recall at the budget,
precision, PR-AUC, recall at the tuned threshold, transactions per second) and the per-stage
throughput, and writes WORKDIR/.../bench/bench.json and bench.md. Load averages are recorded
before and after: other work on the machine slows the wall times down.

    bash benchmarks/run.sh benchmarks/bench_public.py                 # 5M transactions
    bash benchmarks/run.sh benchmarks/bench_public.py --accounts 30000  # about 300k
    bash benchmarks/run.sh benchmarks/bench_public.py --accounts 100000  # about 1M
    options: [--days 10] [--seed 1] [--split 0.7] [--budget 0.01] [--sweep 0]
             [--tune-on report-length|all] [--gfp-patterns fan,degree,...]
             [--gfp-timeout 1800]
             [--workdir /tmp/flows87-public-bench] [--no-gfp]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from harness import load, synth_input, usage, write_results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=500_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split", type=float, default=0.7)
    ap.add_argument("--budget", type=float, default=0.01)
    ap.add_argument("--sweep", type=int, default=0, help="random settings of a tuning sweep")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/flows87-public-bench"))
    ap.add_argument("--no-gfp", action="store_true", help="flows87 only (no snapml needed)")
    ap.add_argument(
        "--gfp-patterns",
        default=None,
        help="what GFP computes: fan,degree,scatter-gather,temp-cycle,lc-cycle,vertex-stats "
        "(default: fan,degree,scatter-gather,vertex-stats)",
    )
    ap.add_argument(
        "--gfp-timeout",
        type=float,
        default=1800.0,
        help="seconds after which the GFP baseline is stopped and reported as not finished",
    )
    ap.add_argument(
        "--tune-on",
        choices=["report-length", "all"],
        default="report-length",
        help="tuning period: as long as the report period (default), or all before the cut",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("MPLCONFIGDIR", str(args.workdir / ".matplotlib"))

    from flows87.research.bench import bench, markdown, table

    folder = args.workdir / f"public-{args.accounts}x{args.days}-s{args.seed}"
    data = folder / "data"
    load_before = load()
    synth = synth_input(data, args.accounts, args.days, args.seed)
    if not synth["reused"]:
        print(
            f"generated {synth['transactions']:,} transactions in {synth['total_s']:.0f} s",
            file=sys.stderr,
        )
    t0 = time.perf_counter()
    doc = bench(
        data,
        folder / "bench",
        split=args.split,
        budget=args.budget,
        gfp=not args.no_gfp,
        gfp_patterns=args.gfp_patterns,
        gfp_timeout=args.gfp_timeout,
        tune_on=args.tune_on,
        sweep_n=args.sweep,
        seed=args.seed,
        say=lambda m: print(m, file=sys.stderr),
    )
    seconds = time.perf_counter() - t0
    doc["machine"] = {
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": load(),
        "bench_seconds": round(seconds, 1),
        "peak_rss_mb": usage()["peak_rss_mb"],
    }
    write_results(doc["machine"], folder / "bench" / "machine.json")
    print(markdown(doc))
    print(table(doc))
    print(
        f"\n{doc['transactions']:,} transactions; whole benchmark {seconds:.0f} s; "
        f"machine {json.dumps(doc['machine'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
