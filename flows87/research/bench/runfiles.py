"""What the benchmark reads from a run directory: its active accounts, labels and throughput."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError
from flows87.rundir import RunDir


def active_accounts(run_dir: Path) -> pl.DataFrame:
    """Every account that pays or is paid in the run: the population measured."""
    tx = pl.read_parquet(RunDir(run_dir).transactions, columns=["src_account", "dst_account"])
    return (
        pl.concat(
            [
                tx.select(pl.col("src_account").alias("account_id")),
                tx.select(pl.col("dst_account").alias("account_id")),
            ]
        )
        .unique()
        .sort("account_id")
    )


def labels(run_dir: Path) -> pl.DataFrame:
    """account_id, is_suspicious (and typology when there) of the run's scored accounts."""
    path = RunDir(run_dir).accounts_scored
    scored = pl.read_parquet(path)
    if "is_suspicious" not in scored.columns:
        raise InputError(
            "the input has no labels: a benchmark measures detection against them", file=path
        )
    cols = [c for c in ("account_id", "is_suspicious", "typology") if c in scored.columns]
    return scored.select(cols)


def rates(transactions: int, seconds: dict[str, float]) -> dict[str, Any]:
    """Transactions per second in all and per stage."""
    total = sum(seconds.values())
    return {
        "transactions": transactions,
        "seconds": round(total, 3),
        "txn_per_s": round(transactions / total, 1) if total else None,
        "stages": {
            k: {"seconds": v, "txn_per_s": round(transactions / v, 1) if v else None}
            for k, v in seconds.items()
        },
    }


def throughput(run_dir: Path) -> dict[str, Any]:
    """The run's transactions (after its gate) per second of each stage of run.json."""
    run = RunDir(run_dir)
    info = json.loads(run.run_json.read_text(encoding="utf-8"))
    n = pl.scan_parquet(run.transactions).select(pl.len()).collect().item()
    secs = {k: float(v) for k, v in sorted((info.get("stage_seconds") or {}).items())}
    return rates(n, secs)
