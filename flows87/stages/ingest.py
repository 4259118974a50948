"""Stage 1: read any supported input, gate it, publish canonical Parquet into the run directory.

Accounts are gated first so the transactions gate can check that every account it names is
known. transactions.parquet and accounts.parquet are written only after both gates pass, so a
failed run leaves the previous results in place.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from flows87 import ingest as readers
from flows87 import quality
from flows87.io import write_parquet
from flows87.runinfo import fingerprint, stage
from flows87.stages.config import RunConfig

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def ingest(
    source: str | Path,
    run_dir: str | Path,
    config: RunConfig | None = None,
    progress: Progress = _noop,
) -> dict[str, Any]:
    """Returns a small summary (counts, quarantine, label counts) for the CLI and XCom."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    params = {"source": str(source), "format": config.format, **config.interval_params()}
    with stage(run_dir, "ingest", params) as rec:
        progress("reading input")
        with rec.step("read"):
            result = readers.read(
                source,
                config.format,
                base_currency=config.base_currency,
                max_reject_fraction=config.max_reject_fraction,
            )
            rec.params["format"] = result.format
            rec.extra["input"] = fingerprint(result.sources)
            accounts = result.accounts.collect()
            transactions = result.transactions.collect()
        interval = config.interval_params()

        progress("quality gate: accounts")
        with rec.step("gate_accounts"):
            acc_gate = quality.run_gate(
                accounts,
                "raw_accounts",
                run_dir,
                params=interval,
                max_failed_fraction=config.max_failed_fraction,
                prior_rejects=_rejects_of(result.rejects, "accounts"),
            )
        progress("quality gate: transactions")
        with rec.step("gate_transactions"):
            known = acc_gate.passed.get_column("account_id").to_list()
            txn_gate = quality.run_gate(
                transactions,
                "raw_transactions",
                run_dir,
                params={**interval, "known_accounts": known},
                max_failed_fraction=config.max_failed_fraction,
                prior_rejects=_rejects_of(result.rejects, "transactions"),
            )
        progress("writing canonical tables")
        with rec.step("write"):
            write_parquet(acc_gate.passed, run_dir / "accounts.parquet")
            write_parquet(txn_gate.passed, run_dir / "transactions.parquet")

        txns = txn_gate.passed
        summary: dict[str, Any] = {
            "run_dir": str(run_dir),
            "format": result.format,
            "transactions": txns.height,
            "accounts": acc_gate.passed.height,
            "quarantined": {
                "accounts": acc_gate.stats["rows_quarantined"],
                "transactions": txn_gate.stats["rows_quarantined"],
            },
            "labelled": "is_suspicious" in txns.columns,
        }
        if summary["labelled"]:
            counts = (
                txns.filter(pl.col("is_suspicious"))
                .group_by("typology")
                .len()
                .sort("typology", nulls_last=True)
            )
            summary["suspicious_transactions"] = int(txns["is_suspicious"].sum())
            summary["typologies"] = {str(t): int(n) for t, n in counts.iter_rows()}
        rec.counts = summary
        rec.warnings = [*acc_gate.stats["warnings"], *txn_gate.stats["warnings"]]
        summary["warnings"] = rec.warnings
    return summary


def _rejects_of(rejects: pl.DataFrame, table: str) -> pl.DataFrame | None:
    if rejects.is_empty():
        return None
    part = rejects.filter(pl.col("table") == table)
    return None if part.is_empty() else part
