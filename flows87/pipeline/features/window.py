"""The features of one window length: every family's aggregations over the legs, per period.

Time is cut into tumbling windows aligned to `origin`, and every account gets one row per
period in which it has legs. Measured on 10M legs: the streaming engine's hashed group-by sums
and counts several times faster than the in-memory one, and the in-memory one takes medians
several times faster when the key is marked sorted (it cuts slices instead of hashing); distinct
counts come from one row per (account, period, value), which also gives the top payer and payee
shares.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from flows87.pipeline.features.families import every_family
from flows87.pipeline.features.legs import FIXED_DECIMALS, UTC_US


def window_features(
    legs: pl.DataFrame,
    codes: int,
    name: str,
    delta: timedelta,
    origin: datetime,
    scale: float = float(10**FIXED_DECIMALS),
) -> pl.DataFrame:
    """The features of one window length, keyed by account `code`: one row per (account,
    period) with legs. `codes` is the number of account codes."""
    step_us = int(delta.total_seconds() * 1_000_000)
    origin_lit = pl.lit(origin).cast(UTC_US)
    period = (pl.col("ts") - origin_lit).dt.total_microseconds() // step_us
    first, last = legs.select(
        period.min().fill_null(0).alias("first"), period.max().fill_null(0).alias("last")
    ).row(0)
    periods = last - first + 1
    # (account, period) as one integer, ascending like the legs
    key = pl.col("account").cast(pl.Int64) * periods + (period - first)
    frame = legs.with_columns(
        key.alias("key"),
        # the amount in fixed point: integer sums are exact, whatever order they run in
        (pl.col("amt") * scale).round().cast(pl.Int64).alias("fixed"),
    ).with_columns(
        # the first leg of each day in the group: active days
        ((pl.col("key") != pl.col("key").shift(1)).fill_null(True) | ~pl.col("same_day")).alias(
            "new_day"
        )
    )
    family = every_family(scale)
    main = frame.lazy().group_by("key").agg(family.sums)
    medians = (
        frame.lazy().with_columns(pl.col("key").set_sorted()).group_by("key").agg(family.medians)
    )
    parts = [
        main.collect(engine="streaming"),
        medians.collect(),
        _counterparties(frame.lazy(), family.counterparties, codes * periods, codes).collect(
            engine="streaming"
        ),
        _distinct(frame.lazy(), "location", family.places).collect(engine="streaming"),
        _distinct(frame.lazy(), "country", family.countries).collect(engine="streaming"),
    ]
    del frame
    out_frame = parts[0]
    for part in parts[1:]:
        out_frame = out_frame.join(part, on="key", how="left")
    return out_frame.select(
        (pl.col("key") // periods).cast(pl.UInt32).alias("code"),
        pl.lit(name).alias("window"),
        (origin_lit + pl.duration(microseconds=(pl.col("key") % periods + first) * step_us)).alias(
            "window_start"
        ),
        (
            origin_lit + pl.duration(microseconds=(pl.col("key") % periods + first + 1) * step_us)
        ).alias("window_end"),
        pl.exclude("key"),
    ).with_columns(
        pl.col(*family.places, *family.countries).fill_null(0),  # no such leg in the period
        *family.derived,
    )


def _counterparties(
    frame: pl.LazyFrame, counts: dict[str, pl.Expr], keys: int, codes: int
) -> pl.LazyFrame:
    """Per (account, period): distinct counterparties meeting each condition, and the largest
    counterparty's share of the inbound and outbound amounts, from one row per counterparty.

    `keys` bounds the (account, period) key and `codes` the counterparty code: when their
    product fits in 64 bits, the pair is grouped as one integer, which is faster."""
    inn, amt = pl.col("is_in"), pl.col("fixed")
    aggs = [
        *(cond.any().alias(name) for name, cond in counts.items()),
        inn.any().alias("_any_in"),
        (~inn).any().alias("_any_out"),
        pl.when(inn).then(amt).sum().alias("_in"),
        pl.when(~inn).then(amt).sum().alias("_out"),
    ]
    if keys * codes < 2**63:
        pair = pl.col("key") * codes + pl.col("cp")
        pairs = frame.group_by(pair.alias("pair")).agg(aggs)
        pairs = pairs.with_columns((pl.col("pair") // codes).alias("key"))
    else:
        pairs = frame.group_by("key", "cp").agg(aggs)
    tops = []
    for side, alias in (("in", "top_payer_share"), ("out", "top_payee_share")):
        amount = pl.when(pl.col(f"_any_{side}")).then(pl.col(f"_{side}"))
        tops.append((amount.max() / amount.sum()).alias(alias))
    return pairs.group_by("key").agg(*(pl.col(name).sum().cast(pl.Int64) for name in counts), *tops)


def _distinct(frame: pl.LazyFrame, value: str, counts: dict[str, pl.Expr]) -> pl.LazyFrame:
    """Per (account, period): distinct non-null `value`s among the legs meeting each condition
    (periods without such legs are absent), from one row per (account, period, value)."""
    relevant = frame.filter(pl.col(value).is_not_null() & pl.any_horizontal(*counts.values()))
    pairs = relevant.group_by("key", value).agg(
        cond.any().alias(name) for name, cond in counts.items()
    )
    return pairs.group_by("key").agg(pl.col(name).sum().cast(pl.Int64) for name in counts)
