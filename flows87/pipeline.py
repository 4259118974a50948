"""The stages of a run, each a plain function from a run directory to a run directory.

The CLI and the Airflow tasks call these same functions, so `flows87 ingest` on a laptop and the
scheduled DAG produce identical files. Each stage writes its outputs atomically and only after its
quality gate passed, so a failed run leaves the previous results in place and can be re-run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flows87 import ingest as readers
from flows87 import quality
from flows87.errors import Flows87Error
from flows87.io import write_parquet
from flows87.runinfo import RunInfo, fingerprint

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Interval:
    """The run's data interval, half-open: start <= ts < end (UTC)."""

    start: datetime
    end: datetime

    def as_params(self) -> dict[str, str]:
        return {"interval_start": self.start.isoformat(), "interval_end": self.end.isoformat()}


@dataclass
class IngestSummary:
    run_dir: Path
    format: str
    transactions: int
    accounts: int
    quarantined: dict[str, int]
    warnings: list[str]
    labelled: bool
    suspicious_transactions: int | None
    typologies: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["run_dir"] = str(self.run_dir)
        return d


def _noop(_: str) -> None:
    pass


def ingest(
    source: str | Path,
    run_dir: str | Path,
    *,
    format: str | None = None,
    interval: Interval | None = None,
    base_currency: str = "USD",
    max_failed_fraction: float = 0.01,
    max_reject_fraction: float = 0.05,
    progress: Progress = _noop,
) -> IngestSummary:
    """Read any supported input, gate it, and publish canonical Parquet into `run_dir`.

    Accounts are gated first so the transactions gate can check that every account it names is
    known. `transactions.parquet` and `accounts.parquet` are written only after both gates pass.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = RunInfo(
        run_dir,
        command="ingest",
        params={
            "source": str(source),
            "format": format,
            "interval": interval.as_params() if interval else None,
            "base_currency": base_currency,
            "max_failed_fraction": max_failed_fraction,
            "max_reject_fraction": max_reject_fraction,
        },
    )
    try:
        progress("reading input")
        with info.stage("read"):
            result = readers.read(
                source,
                format,
                base_currency=base_currency,
                max_reject_fraction=max_reject_fraction,
            )
            info.params["format"] = result.format
            info.input = fingerprint(result.sources)
            accounts = result.accounts.collect()
            transactions = result.transactions.collect()
        rejects = result.rejects
        params = interval.as_params() if interval else {}

        progress("quality gate: accounts")
        with info.stage("gate_accounts"):
            acc_gate = quality.run_gate(
                accounts,
                "raw_accounts",
                run_dir,
                params=params,
                max_failed_fraction=max_failed_fraction,
                prior_rejects=_rejects_of(rejects, "accounts"),
            )
        progress("quality gate: transactions")
        with info.stage("gate_transactions"):
            known = acc_gate.passed.get_column("account_id").to_list()
            txn_gate = quality.run_gate(
                transactions,
                "raw_transactions",
                run_dir,
                params={**params, "known_accounts": known},
                max_failed_fraction=max_failed_fraction,
                prior_rejects=_rejects_of(rejects, "transactions"),
            )

        progress("writing canonical tables")
        with info.stage("write"):
            write_parquet(acc_gate.passed, run_dir / "accounts.parquet")
            write_parquet(txn_gate.passed, run_dir / "transactions.parquet")

        txns = txn_gate.passed
        labelled = "is_suspicious" in txns.columns
        typologies: dict[str, int] = {}
        suspicious = None
        if labelled:
            suspicious = int(txns.get_column("is_suspicious").sum())
            counts = (
                txns.filter(pl.col("is_suspicious"))
                .group_by("typology")
                .len()
                .sort("typology", nulls_last=True)
            )
            typologies = {str(t): int(n) for t, n in counts.iter_rows()}
        summary = IngestSummary(
            run_dir=run_dir,
            format=result.format,
            transactions=txns.height,
            accounts=acc_gate.passed.height,
            quarantined={
                "accounts": acc_gate.stats["rows_quarantined"],
                "transactions": txn_gate.stats["rows_quarantined"],
            },
            warnings=[*acc_gate.stats["warnings"], *txn_gate.stats["warnings"]],
            labelled=labelled,
            suspicious_transactions=suspicious,
            typologies=typologies,
        )
        info.counts = summary.as_dict()
        info.status = "succeeded"
        return summary
    except Flows87Error as exc:
        info.status = "failed"
        info.error = exc.message
        raise
    finally:
        info.save()


def _rejects_of(rejects: pl.DataFrame, table: str) -> pl.DataFrame | None:
    if rejects.is_empty():
        return None
    part = rejects.filter(pl.col("table") == table)
    return None if part.is_empty() else part
