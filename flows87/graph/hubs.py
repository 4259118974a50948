"""Fan-in and fan-out: one hub and the many accounts it collects from or pays out to in a short window.

The hub alone is what an account rule sees; the pattern also names the spokes, so a case about
the hub can show (and an evaluation can count) the mules on the other side. Card payments are
left out (a merchant's sales are a fan-in by nature). Business hubs (a company's customers and
payroll are fans by nature) count only with `business_hubs` 1, and then only cash withdrawals
and transfers abroad count as the money passing through (a front company cashing out). A collection only counts when the money flows through the hub: what a
fan-in gathered leaves again within days, what a fan-out spreads arrived just before. A landlord
collecting rent on the first of the month keeps it; a collector for a network does not.
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
    legs = transfers(ctx, p["min_amount"]).filter(pl.col("channel") != "card")
    if not p["business_hubs"]:
        legs = legs.join(businesses, on=hub, how="anti")
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
        (pl.lit(f"{name}:") + pl.col("txn_id").sort_by("ts", "txn_id").first().over(hub)).alias(
            "instance"
        )
    )
    got = _flowing_through(ctx, got, hub, p, inbound=inbound)
    if got.is_empty():
        return empty_hits()
    facts = txn_lists(got).join(
        got.group_by("instance").agg(
            pl.col(spoke).n_unique().alias("n_counterparties"),
            pl.len().alias("n_transfers"),
            pl.col(hub).first().alias("hub"),
            pl.col("amt").median().round(2).alias("median_amount"),
            pl.col("flow_through").first().round(4).alias("flow_through"),
            *span_facts(amount="amt"),
        ),
        on="instance",
    )
    members = pl.concat(
        [
            got.select("instance", pl.col(hub).alias("account_id"), pl.lit("hub").alias("role")),
            got.sort("ts").select(
                "instance",
                pl.col(spoke).alias("account_id"),
                pl.lit("sender" if inbound else "receiver").alias("role"),
            ),
        ]
    )
    return finish(members, facts)


def _flowing_through(
    ctx: GraphContext, got: pl.DataFrame, hub: str, p: dict[str, float], *, inbound: bool
) -> pl.DataFrame:
    """Keep instances whose money passes through the hub within `flow_days` (see module doc)."""
    lag = days(p["flow_days"])
    span = got.group_by(hub).agg(
        pl.col("ts").min().alias("first"),
        pl.col("ts").max().alias("last"),
        pl.col("amt").sum().alias("fan_sum"),
    )
    side = "src_account" if inbound else "dst_account"
    firms = ctx.accounts.filter(pl.col("kind") == "business").select(
        pl.col("account_id").alias(hub)
    )
    # A business's money always flows on to suppliers and staff; for a business hub only cash
    # and money sent abroad count as passing through (collected, then taken out of reach).
    out_of_reach = (pl.col("channel") == "cash_withdrawal") | (
        pl.col("src_country").is_not_null()
        & pl.col("dst_country").is_not_null()
        & (pl.col("src_country") != pl.col("dst_country"))
    )
    moves = (
        ctx.transactions.select(
            pl.col(side).alias(hub), "ts", "amount_base", out_of_reach.alias("out")
        )
        .join(span, on=hub, how="inner")
        .join(firms.with_columns(pl.lit(True).alias("firm")), on=hub, how="left")
        .filter(pl.col("firm").is_null() | pl.col("out"))
    )
    if inbound:  # what left the hub from the first collection until flow_days after the last
        moves = moves.filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last") + lag)
    else:  # what reached the hub from flow_days before the first payment until the last
        moves = moves.filter(pl.col("ts") >= pl.col("first") - lag, pl.col("ts") <= pl.col("last"))
    moved = moves.group_by(hub).agg(pl.col("amount_base").sum().alias("moved"))
    through = (
        span.select(hub, "fan_sum")
        .join(moved, on=hub, how="left")
        .select(
            hub,
            (pl.col("moved").fill_null(0.0) / pl.col("fan_sum"))
            .clip(upper_bound=1.0)
            .alias("flow_through"),
        )
        .filter(pl.col("flow_through") >= p["min_flow_through"])
    )
    return got.join(through, on=hub, how="inner")


def fan_in(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """At least `min_counterparties` distinct senders paying one non-business hub within the window."""
    return _fan(ctx, p, inbound=True)


def fan_out(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """One non-business hub paying at least `min_counterparties` distinct receivers within the window."""
    return _fan(ctx, p, inbound=False)
