"""Distinct items per time window in O(n log n): busiest windows, rows in them, `covering`.

A rolling aggregation visits every row of every window, which is quadratic when thousands of
rows share one (a hub's payers, a day of transactions all stamped midnight); these count with
sorted steps instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import polars as pl

from flows87.pipeline.graph.codes import code, codes_of

ONE_US = timedelta(microseconds=1)


def busiest_windows(
    legs: pl.DataFrame, by: str, item: str, window: timedelta, k: int
) -> pl.DataFrame:
    """For each `by` group, the end (`anchor`) of the window (anchor - window, anchor], anchored
    at one of its rows' `ts`, holding the most distinct `item`s, when at least `k`; the earliest
    such end on ties. Columns `by`, `anchor`.

    The same as a rolling distinct count per row (`rolling(...).agg(n_unique)`, whose cost grows
    with the rows in each window, so quadratically for a payroll run of thousands of payees on
    one day), but linear after a sort: an item counts at time t when one of its rows falls in
    (t - window, t], that is when t lies in [ts, ts + window) for one of its rows (`covering`).
    """
    anchors = legs.select(by, pl.col("ts").alias("anchor")).unique()
    counted = covering(legs, [by], item, anchors, pl.col("ts"), pl.col("ts") + window - ONE_US)
    counted = counted.filter(pl.col("n") >= k)
    # per group, the earliest of the windows with most items (hash groupings, no global sort)
    most = counted.group_by(by).agg(pl.col("n").max().alias("_most"))
    return (
        counted.join(most, on=by)
        .filter(pl.col("n") == pl.col("_most"))
        .group_by(by)
        .agg(pl.col("anchor").min())
        .sort(by)
    )


def in_window(legs: pl.DataFrame, ends: pl.DataFrame, by: str, window: timedelta) -> pl.DataFrame:
    """The rows of `legs` inside their group's window (anchor - window, anchor]; `ends` has one
    `anchor` per `by` group (e.g. from `busiest_windows`)."""
    return legs.join(ends.select(by, "anchor"), on=by).filter(
        pl.col("ts") > pl.col("anchor") - window, pl.col("ts") <= pl.col("anchor")
    )


def covering(
    rows: pl.DataFrame,
    by: Sequence[str],
    item: str | None,
    at: pl.DataFrame,
    lo: pl.Expr,
    hi: pl.Expr,
    *,
    same_length: bool = True,
    name: str = "n",
) -> pl.DataFrame:
    """`at` (columns `by` and `anchor`) with `name`: how many distinct `item`s of the anchor's
    group have a row whose closed interval [`lo`, `hi`] (datetimes, evaluated on `rows`) holds
    the anchor; with `item` None, how many rows do.

    This is what a rolling distinct count computes (a window (t - w, t] holds a row at time s
    exactly when t lies in [s, s + w)), but in O(R log R + A log A) for R rows and A anchors
    whatever the windows hold: each item's overlapping intervals are merged into runs, each run
    adds one at its start and removes one after its end, and a running sum of these steps read
    at each anchor is the count there. A rolling aggregation instead visits every row of every
    window, which is quadratic when thousands of rows share a window (a hub's payers, a day of
    transactions all stamped midnight). With `same_length` False the intervals may differ in
    length (their runs are then merged with a running maximum per item).
    """
    keys = list(by)
    cols = [*keys, item] if item is not None else keys
    # text keys become integer codes: sorting and grouping them is several times faster
    iv = rows.select(*cols, lo.alias("_lo"), hi.alias("_hi")).filter(pl.col("_lo") <= pl.col("_hi"))
    numbered = at.select(*keys, "anchor").with_row_index("_i")
    codes = {c: codes_of(iv.get_column(c), numbered.get_column(c)) for c in keys}
    if item is not None:
        codes[item] = codes_of(iv.get_column(item))
    iv = iv.with_columns(code(c, dtype) for c, dtype in codes.items() if dtype is not None)
    numbered = numbered.with_columns(
        code(c, dtype) for c, dtype in codes.items() if dtype is not None and c in keys
    )
    if item is not None:
        same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift()) for c in cols])
        reach = pl.col("_hi") if same_length else pl.col("_hi").cum_max().over(cols)
        iv = (
            iv.sort([*cols, "_lo"])
            .with_columns(
                (~same.fill_null(False) | (pl.col("_lo") > reach.shift()).fill_null(True))
                .cum_sum()
                .alias("_run")
            )
            .group_by("_run")
            .agg(*(pl.col(c).first() for c in keys), pl.col("_lo").min(), pl.col("_hi").max())
        )
    steps = pl.concat(
        [
            iv.select(*keys, pl.col("_lo").alias("_t"), pl.lit(1, pl.Int64).alias("_s")),
            iv.select(
                *keys, (pl.col("_hi") + ONE_US).alias("_t"), pl.lit(-1, pl.Int64).alias("_s")
            ),
            numbered.select(*keys, pl.col("anchor").alias("_t"), pl.lit(0, pl.Int64).alias("_s")),
        ]
    )
    # Sorted by group, then time: each group's steps sum to zero, so one running sum serves all.
    counts = (
        steps.group_by(*keys, "_t")
        .agg(pl.col("_s").sum())
        .sort([*keys, "_t"])
        .select(*keys, pl.col("_t").alias("anchor"), pl.col("_s").cum_sum().alias(name))
    )
    found = numbered.join(counts, on=[*keys, "anchor"], how="left", nulls_equal=True)
    return at.with_columns(found.sort("_i").get_column(name))
