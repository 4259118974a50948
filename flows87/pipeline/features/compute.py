"""Per-account windowed features, computed with polars expressions only: the feature table.

Each transaction becomes two legs, one for each account it touches (features/legs.py), so every
feature is a grouped aggregation over legs. Time is cut into tumbling windows of each configured
length, aligned to the start of the data, and every account gets one row per window in which it
was active (features/window.py; what each feature family aggregates: features/families.py).
Rules then read the window they name and fire on any period in which the behaviour happened.

How it stays fast on millions of transactions (5M transactions = 10M legs, on two cores):
- every per-transaction condition is one bit of an integer and account ids are dense integer
  codes, so no string and no column of booleans reaches the legs;
- the legs are sorted once, by one integer key, into (account, time) order;
- each window's sums, counts and means run in one hashed group-by on the streaming engine, the
  medians on the in-memory engine with the (account, period) key marked sorted, and distinct
  counts from one row per (account, period, counterparty).

Amounts are summed as integers (fixed point, `legs.fixed_scale`): integer sums do not depend on
the order in which the multithreaded group-by meets the legs, so the same data gives the same
features bit for bit in every process (float sums differ in the last bits from run to run).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from flows87.pipeline.features.accounts import (
    available_columns,
    has_time_of_day,
    missing_inputs,
    null_missing,
    static_features,
)
from flows87.pipeline.features.legs import (
    DIRECT_CHANNELS,
    account_table,
    fixed_scale,
    flagged,
    legs,
)
from flows87.pipeline.features.registry import FEATURES
from flows87.pipeline.features.settings import FeatureSettings
from flows87.pipeline.features.whole import Whole
from flows87.pipeline.features.window import window_features

__all__ = [
    "DIRECT_CHANNELS",
    "TRANSACTION_COLUMNS_READ",
    "compute",
    "has_time_of_day",
    "missing_inputs",
]

TRANSACTION_COLUMNS_READ = (
    "ts",
    "src_account",
    "dst_account",
    "amount_base",
    "channel",
    "mcc",
    "src_country",
    "dst_country",
    "location_id",
    "device_id",
)
"""The transaction columns `compute` reads: a caller may load only these (each string column of
5M transactions is about 100 MB in memory)."""


def compute(
    transactions: pl.DataFrame | pl.LazyFrame,
    accounts: pl.DataFrame | pl.LazyFrame,
    settings: FeatureSettings,
    *,
    origin: datetime | None = None,
    whole: Whole | None = None,
    only: pl.Series | None = None,
) -> pl.DataFrame:
    """The feature table: one row per (account, window length, window period) with activity.

    `origin` aligns the windows (default: midnight of the first transaction's day), so the same
    data always gives the same periods. A partition or batch passes `whole` (features/whole.py:
    what the whole run decides) and `only`, its accounts: `transactions` are then those touching
    them, and only their rows are computed.
    """
    tx = transactions.lazy()
    acc = accounts.lazy()
    available = whole.available if whole is not None else available_columns(tx, acc)
    if origin is None:
        first = tx.select(pl.col("ts").min()).collect().item()
        if first is None:
            return empty()
        origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
    static = whole.static if whole is not None else static_features(acc, tx, available)
    ids = account_table(tx, acc)
    all_legs = legs(flagged(tx, ids, settings).collect(), ids, origin)
    scale = whole.scale if whole is not None else fixed_scale(all_legs)
    if only is not None:  # a counterparty's legs here are not its whole history
        codes = ids.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("code"), "account_id")
        mine = codes.filter(pl.col("account_id").is_in(only.implode()))["code"]
        all_legs = all_legs.filter(pl.col("account").is_in(mine.implode()))
    frames = [
        window_features(all_legs, ids.height, name, delta, origin, scale)
        for name, delta in settings.window_deltas().items()
    ]
    del all_legs
    out = pl.concat(frames)
    del frames
    out = _in_order(out, out.select(pl.arg_sort_by("code", "window", "window_start")).to_series())
    # account attributes by code (an account listed twice keeps its first row, as in the legs)
    by_code = ids.select("account_id").join(
        static.unique("account_id", keep="first", maintain_order=True),
        on="account_id",
        how="left",
        maintain_order="left",
    )
    out = out.with_columns(
        pl.lit(by_code[c]).gather(pl.col("code")).alias(c) for c in by_code.columns
    ).with_columns(
        ((pl.col("window_end") - pl.col("opened_at")).dt.total_seconds() * (1 / 86_400)).alias(
            "account_age_days"
        )
    )
    out = null_missing(out, available)
    return out.select([f.name for f in FEATURES])


def _in_order(frame: pl.DataFrame, order: pl.Series) -> pl.DataFrame:
    """The rows of `frame` in `order`, moved one column at a time: reordering the wide feature
    table in one go would hold two whole copies of it."""
    return pl.DataFrame([frame.drop_in_place(name).gather(order) for name in list(frame.columns)])


def empty() -> pl.DataFrame:
    return pl.DataFrame({f.name: [] for f in FEATURES})
