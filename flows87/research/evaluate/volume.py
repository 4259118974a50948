"""Alert volume per day: how much work a run (or a rule change) puts in front of investigators.

A signal is dated by its `window_start` (the start of the feature window it fired on); a signal
without a window (detectors, graph patterns) by the earliest of its evidence transactions
(`txn_ids`, looked up in `transactions`); a signal with neither is counted as undated. A case is
dated by its `first_ts`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from flows87.research.evaluate.metrics import number


def signal_days(signals: pl.DataFrame, transactions: pl.DataFrame | None = None) -> pl.DataFrame:
    """signals with a `day` column (Date, null when undated)."""
    sig = signals.with_row_index("_sig")
    if "window_start" in sig.columns:
        day = pl.col("window_start").cast(pl.Datetime("us", "UTC")).dt.date()
    else:
        day = pl.lit(None, dtype=pl.Date)
    sig = sig.with_columns(day.alias("day"))
    if transactions is not None and "txn_ids" in sig.columns and "ts" in transactions.columns:
        first = (
            sig.filter(pl.col("day").is_null())
            .select("_sig", pl.col("txn_ids").alias("txn_id"))
            .explode("txn_id")
            .drop_nulls()
            .join(transactions.select("txn_id", "ts"), on="txn_id", how="inner")
            .group_by("_sig")
            .agg(pl.col("ts").min().dt.date().alias("_first"))
        )
        sig = (
            sig.join(first, on="_sig", how="left")
            .with_columns(pl.coalesce("day", "_first").alias("day"))
            .drop("_first")
        )
    return sig.drop("_sig")


def alerts_per_day(
    signals: pl.DataFrame | None,
    cases: pl.DataFrame | None,
    transactions: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per day with signals, accounts_signalled (distinct accounts with a signal that
    day) and cases (cases whose first transaction is that day); days without alerts are left
    out. Sorted by day."""
    parts = []
    if signals is not None and not signals.is_empty():
        parts.append(
            signal_days(signals, transactions)
            .drop_nulls("day")
            .group_by("day")
            .agg(
                pl.len().cast(pl.Int64).alias("signals"),
                pl.col("account_id").n_unique().cast(pl.Int64).alias("accounts_signalled"),
            )
        )
    if cases is not None and not cases.is_empty() and "first_ts" in cases.columns:
        parts.append(
            cases.select(pl.col("first_ts").dt.date().alias("day"))
            .drop_nulls()
            .group_by("day")
            .agg(pl.len().cast(pl.Int64).alias("cases"))
        )
    frame = pl.DataFrame(schema={"day": pl.Date})
    for p in parts:
        frame = frame.join(p, on="day", how="full", coalesce=True)
    for col in ("signals", "accounts_signalled", "cases"):
        if col not in frame.columns:
            frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(col))
    return (
        frame.with_columns(pl.col("signals", "accounts_signalled", "cases").fill_null(0))
        .select("day", "signals", "accounts_signalled", "cases")
        .sort("day")
    )


def volume_summary(
    per_day: pl.DataFrame,
    signals: pl.DataFrame | None = None,
    transactions: pl.DataFrame | None = None,
) -> dict[str, Any]:
    """Totals, mean and peak per day of `alerts_per_day`, and the count of undated signals."""
    out: dict[str, Any] = {"days": per_day.height}
    for col in ("signals", "cases"):
        s = per_day[col]
        out[col] = int(s.sum())
        out[f"{col}_per_day_mean"] = (
            round(float(number(s.mean(), f"{col} per day, mean")), 2) if per_day.height else None
        )
        out[f"{col}_per_day_max"] = (
            int(number(s.max(), f"{col} per day, max")) if per_day.height else None
        )
    if signals is not None and not signals.is_empty():
        out["undated_signals"] = int(signal_days(signals, transactions)["day"].null_count())
    return out
