"""Each rule's precision over time, from investigators' dispositions.

A decided case counts for every signal_id it carried when decided (rules, graph patterns and the
detector alike), in the period of its decision: precision = reported / decided, where decided
includes "no further action". Overall per-rule precision is `disposition_metrics`' (not redone
here); this adds the periods and the trend across them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl

from flows87.research.evaluate.ranking import ratio

Period = Literal["week", "month"]

PERIOD_FORMATS: dict[str, str] = {"week": "%G-W%V", "month": "%Y-%m"}
"""ISO week (2026-W02: Monday to Sunday, the week-numbering year) or calendar month, in UTC."""


def period_label(period: Period) -> pl.Expr:
    return pl.col("decided_at").dt.convert_time_zone("UTC").dt.strftime(PERIOD_FORMATS[period])


def precision_by_period(dispositions: pl.DataFrame, period: Period = "week") -> pl.DataFrame:
    """signal_id, period, decided, reported, false_positive, no_further_action, precision: one
    row per rule and period with a decided case, sorted by rule and period."""
    return (
        dispositions.select(
            "case_id", "disposition", "signal_ids", period_label(period).alias("period")
        )
        .explode("signal_ids")
        .rename({"signal_ids": "signal_id"})
        .drop_nulls("signal_id")
        .unique(["case_id", "signal_id"])
        .group_by("signal_id", "period")
        .agg(
            pl.len().cast(pl.Int64).alias("decided"),
            *[
                (pl.col("disposition") == d).sum().cast(pl.Int64).alias(d)
                for d in ("reported", "false_positive", "no_further_action")
            ],
        )
        .with_columns((pl.col("reported") / pl.col("decided")).round(4).alias("precision"))
        .sort("signal_id", "period")
    )


def trend(periods: pl.DataFrame, min_periods: int, slope_from: float) -> dict[str, Any]:
    """The slope of precision per period (least squares, weighted by decided cases; periods
    numbered in order, gaps ignored) and its word: rising, falling, steady, or too few periods."""
    n = periods.height
    first = periods.row(0, named=True) if n else None
    last = periods.row(n - 1, named=True) if n else None
    out: dict[str, Any] = {
        "periods": n,
        "first": first["precision"] if first else None,
        "last": last["precision"] if last else None,
        "slope": None,
        "trend": "too few periods",
    }
    if n < min_periods:
        return out
    x = np.arange(n, dtype=float)
    y = periods["precision"].to_numpy().astype(float)
    w = periods["decided"].to_numpy().astype(float)
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    slope = float(np.sum(w * (x - xm) * (y - ym)) / np.sum(w * (x - xm) ** 2))
    out["slope"] = round(slope, 4)
    out["trend"] = (
        "rising" if slope >= slope_from else "falling" if slope <= -slope_from else "steady"
    )
    return out


def rule_precision(
    dispositions: pl.DataFrame,
    overall: dict[str, dict[str, Any]],
    period: Period,
    min_periods: int,
    slope_from: float,
) -> dict[str, dict[str, Any]]:
    """Per signal_id: overall decided cases, reported and precision (`overall`, from
    disposition_metrics), false positives, its periods and their trend."""
    table = precision_by_period(dispositions, period)
    out: dict[str, dict[str, Any]] = {}
    for sid, rows in table.group_by("signal_id", maintain_order=True):
        rows = rows.drop("signal_id")
        key = str(sid[0])
        base = overall.get(key, {})
        fp = int(rows["false_positive"].sum())
        decided = int(base.get("decided_cases", rows["decided"].sum()))
        out[key] = {
            "decided_cases": decided,
            "reported": int(base.get("reported", rows["reported"].sum())),
            "false_positive": fp,
            "precision": base.get("precision", ratio(int(rows["reported"].sum()), decided)),
            "by_period": rows.to_dicts(),
            **trend(rows, min_periods, slope_from),
        }
    return out
