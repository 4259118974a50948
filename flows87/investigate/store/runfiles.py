"""The run directory's files as the case store reads them: which must be there, with which columns.

Every problem is an InputError naming the file, so `flows87 store load` tells the operator which
file of the run to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError
from flows87.investigate.store.learnedrows import read_model_meta
from flows87.rundir import RunDir

CASE_NEEDS = ("case_id", "risk_score", "accounts")
SIGNAL_NEEDS = ("source", "signal_id", "account_id", "score")


@dataclass(frozen=True)
class RunFiles:
    """The run's tables the loader reads whole; transactions are read later, only the cases'."""

    run: RunDir
    cases: pl.DataFrame
    signals: pl.DataFrame
    scored: pl.DataFrame | None
    accounts: pl.DataFrame | None
    model: dict[str, Any] | None = None  # learning/model/model.meta.json, when a model scored


def read_table(path: Path, required: bool) -> pl.DataFrame | None:
    if not path.exists():
        if required:
            raise InputError("missing from the run directory", file=path)
        return None
    try:
        return pl.read_parquet(path)
    except Exception as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=path) from None


def need_columns(frame: pl.DataFrame, columns: Iterable[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", file=path)


def _required(path: Path, columns: Iterable[str]) -> pl.DataFrame:
    frame = read_table(path, True)
    assert frame is not None  # required: read_table raised otherwise
    need_columns(frame, columns, path)
    return frame


def read_run(run_dir: str | Path) -> RunFiles:
    """cases and signals (required, with their key columns), accounts_scored, accounts and the
    learned model's description (when the run has them)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise InputError("run directory not found", file=run.path)
    cases = _required(run.cases, CASE_NEEDS)
    signals = _required(run.signals, SIGNAL_NEEDS)
    scored = read_table(run.accounts_scored, False)
    accounts = read_table(run.accounts, False)
    return RunFiles(run, cases, signals, scored, accounts, read_model_meta(run.path))


def case_transactions(run: RunDir, ids: pl.DataFrame, columns: Iterable[str]) -> pl.DataFrame:
    """The rows of transactions.parquet whose txn_id is in `ids`, with those of `columns` the
    file has; the caller checks that the file exists.

    A semi join before anything else: a run has millions of transactions, its cases a few
    thousand."""
    path = run.transactions
    try:
        scan = pl.scan_parquet(path)
        names = scan.collect_schema().names()
        keep = [c for c in ("txn_id", *columns) if c in names]
        return (
            scan.select(keep)
            .join(ids.select("txn_id").unique().lazy(), on="txn_id", how="semi")
            .collect()
            .unique("txn_id", keep="first")
        )
    except Exception as exc:
        raise InputError(f"cannot read Parquet: {exc}", file=path) from None


def default_interval_key(run_dir: str | Path) -> str:
    """The run's interval from run.json when it has one, else the directory's name."""
    run = RunDir(run_dir)
    if run.run_json.exists():
        try:
            params = json.loads(run.run_json.read_text(encoding="utf-8")).get("params") or {}
            if params.get("interval_start") and params.get("interval_end"):
                return f"{params['interval_start']}--{params['interval_end']}"
        except (OSError, ValueError):
            pass
    return run.path.resolve().name
