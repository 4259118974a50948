"""Benchmark of the foundation: synthetic generation and ingest (read + quality gates + write).

Each step runs in its own subprocess so that its peak memory (max RSS) is its own. Sizes are
numbers of transactions, reached by generating size/10 accounts over 10 days. The ingest is
measured twice: from the canonical Parquet folder and from the same data written as an IBM
AMLworld CSV (the reader's text-parsing path).

    python benchmarks/bench_foundation.py --sizes 1000000 5000000 [--workdir /tmp/flows87-bench]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from harness import by_stage, emit, spawn, stage_records, step_command, synth_input, write_results

from flows87.rundir import RunDir

AMLWORLD_CURRENCY = {
    "USD": "US Dollar",
    "EUR": "Euro",
    "GBP": "UK Pound",
    "MXN": "Mexican Peso",
    "INR": "Rupee",
    "CNY": "Yuan",
    "JPY": "Yen",
    "CHF": "Swiss Franc",
    "CAD": "Canadian Dollar",
    "AUD": "Australian Dollar",
    "BRL": "Brazil Real",
    "RUB": "Ruble",
    "ILS": "Shekel",
    "SAR": "Saudi Riyal",
    "XBT": "Bitcoin",
}
AMLWORLD_FORMAT = {
    "wire": "Wire",
    "ach": "ACH",
    "card": "Credit Card",
    "cheque": "Cheque",
    "cash_deposit": "Cash",
    "cash_withdrawal": "Cash",
    "crypto": "Bitcoin",
}


def step_synth(size: int, out: Path) -> dict:
    return synth_input(out, max(size // 10, 1000), days=10, seed=1, reuse=False)


def step_to_amlworld(src: Path, out_csv: Path) -> dict:
    """Write the generated transactions in the exact AMLworld CSV layout (not timed as ingest)."""
    import polars as pl

    from flows87.schema import join_ends

    t0 = time.perf_counter()
    tx = pl.scan_parquet(RunDir(src).transactions)
    acc = pl.scan_parquet(RunDir(src).accounts).select("account_id", "bank_id")
    frame = (
        join_ends(tx, acc, {"bank_id": ("src_bank", "dst_bank")})
        .select(
            pl.col("ts").dt.strftime("%Y/%m/%d %H:%M").alias("Timestamp"),
            pl.col("src_bank").fill_null("0").alias("From Bank"),
            pl.col("src_account").alias("Account"),
            pl.col("dst_bank").fill_null("0").alias("To Bank"),
            pl.col("dst_account").alias("Account.1"),
            pl.col("amount").alias("Amount Received"),
            pl.col("currency")
            .replace_strict(AMLWORLD_CURRENCY, default="US Dollar")
            .alias("Receiving Currency"),
            pl.col("amount").alias("Amount Paid"),
            pl.col("currency")
            .replace_strict(AMLWORLD_CURRENCY, default="US Dollar")
            .alias("Payment Currency"),
            pl.col("channel")
            .replace_strict(AMLWORLD_FORMAT, default="ACH")
            .alias("Payment Format"),
            pl.col("is_suspicious").cast(pl.Int8).alias("Is Laundering"),
        )
        .collect()
    )
    header = (
        "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,"
        "Amount Paid,Payment Currency,Payment Format,Is Laundering\n"
    )
    with open(out_csv, "w", encoding="utf-8") as f:
        f.write(header)
        frame.write_csv(f, include_header=False)
    return {
        "rows": frame.height,
        "bytes": out_csv.stat().st_size,
        "write_s": round(time.perf_counter() - t0, 2),
    }


def step_ingest(src: Path, out: Path, fmt: str | None) -> dict:
    from flows87.pipeline.run import ingest
    from flows87.pipeline.stages.config import RunConfig

    t0 = time.perf_counter()
    summary = ingest(src, out, RunConfig(format=fmt, max_failed_fraction=0.05))
    total = time.perf_counter() - t0
    steps = by_stage(stage_records(out))["ingest"]["timings"]
    return {
        "transactions": summary["transactions"],
        "quarantined": summary["quarantined"],
        "total_s": round(total, 2),
        "steps_s": steps,
        "rows_per_s": round(summary["transactions"] / total),
    }


def _child(args: argparse.Namespace) -> None:
    work = Path(args.workdir)
    if args.step == "synth":
        res = step_synth(args.size, work / f"synth-{args.size}")
    elif args.step == "amlworld-csv":
        res = step_to_amlworld(work / f"synth-{args.size}", work / f"amlworld-{args.size}.csv")
    elif args.step == "ingest-parquet":
        res = step_ingest(work / f"synth-{args.size}", work / f"run-parquet-{args.size}", None)
    else:
        res = step_ingest(
            work / f"amlworld-{args.size}.csv", work / f"run-csv-{args.size}", "amlworld"
        )
    emit(res)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    p.add_argument("--workdir", default="/tmp/flows87-bench")
    p.add_argument("--step", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.step:
        _child(args)
        return
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    results = {}
    for size in args.sizes:
        for step in ("synth", "amlworld-csv", "ingest-parquet", "ingest-amlworld"):
            cmd = step_command(__file__, step, size=size, workdir=args.workdir)
            res = spawn(cmd, f"step {step} for size {size}")
            results[f"{size}:{step}"] = res
            print(f"{size:>10,} {step:<16} {json.dumps(res)}", flush=True)
    write_results(results, Path(args.workdir, "results.json"))


if __name__ == "__main__":
    main()
