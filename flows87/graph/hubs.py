"""Fan-in and fan-out: one hub and the many accounts it collects from or pays out to in a short window.

The hub alone is what an account rule sees; the pattern also names the spokes, so a case about
the hub can show (and an evaluation can count) the mules on the other side. Card payments are
left out (a merchant's sales are a fan-in by nature) and so are business hubs (payroll is a
fan-out by nature).
"""

from __future__ import annotations

import polars as pl

from flows87.graph.common import (
    GraphContext,
    days,
    empty_hits,
    finish,
    span_facts,
    transfers,
    txn_lists,
)


def _fan(ctx: GraphContext, p: dict[str, float], *, inbound: bool) -> pl.DataFrame:
    hub, spoke = ("dst", "src") if inbound else ("src", "dst")
    name = "fan_in" if inbound else "fan_out"
    window, k = days(p["window_days"]), int(p["min_counterparties"])
    businesses = ctx.accounts.filter(pl.col("kind") == "business").select(
        pl.col("account_id").alias(hub)
    )
    legs = (
        transfers(ctx, p["min_amount"])
        .filter(pl.col("channel") != "card")
        .join(businesses, on=hub, how="anti")
    )
    wide = legs.group_by(hub).agg(pl.col(spoke).n_unique().alias("n")).filter(pl.col("n") >= k)
    legs = legs.join(wide.select(hub), on=hub, how="semi").sort(hub, "ts")
    if legs.is_empty():
        return empty_hits()
    best = (
        legs.rolling(index_column="ts", period=window, group_by=hub)
        .agg(pl.col(spoke).n_unique().alias("n"))
        .filter(pl.col("n") >= k)
        .sort([hub, "n", "ts"], descending=[False, True, False])
        .unique(hub, keep="first", maintain_order=True)
        .select(hub, pl.col("ts").alias("anchor"))
    )
    if best.is_empty():
        return empty_hits()
    got = legs.join(best, on=hub).filter(
        pl.col("ts") > pl.col("anchor") - window, pl.col("ts") <= pl.col("anchor")
    )
    got = got.with_columns(
        (pl.lit(f"{name}:") + pl.col("txn_id").sort_by("ts", "txn_id").first().over(hub)).alias("instance")
    )
    facts = txn_lists(got).join(
        got.group_by("instance").agg(
            pl.col(spoke).n_unique().alias("n_counterparties"),
            pl.len().alias("n_transfers"),
            pl.col(hub).first().alias("hub"),
            pl.col("amt").median().round(2).alias("median_amount"),
            *span_facts(amount="amt"),
        ),
        on="instance",
    )
    members = pl.concat(
        [
            got.select("instance", pl.col(hub).alias("account_id"), pl.lit("hub").alias("role")),
            got.sort("ts").select(
                "instance", pl.col(spoke).alias("account_id"),
                pl.lit("sender" if inbound else "receiver").alias("role"),
            ),
        ]
    )
    return finish(members, facts)


def fan_in(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """At least `min_counterparties` distinct senders paying one non-business hub within the window."""
    return _fan(ctx, p, inbound=True)


def fan_out(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """One non-business hub paying at least `min_counterparties` distinct receivers within the window."""
    return _fan(ctx, p, inbound=False)
