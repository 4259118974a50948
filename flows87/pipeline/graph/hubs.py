"""Fan-in and fan-out: one hub and the many accounts it collects from or pays out to in a short window.

The hub alone is what an account rule sees; the pattern also names the spokes, so a case about
the hub can show (and an evaluation can count) the mules on the other side, and the account
abroad at the far end of the flow when there is one (where a collection was wired, who funded
a payout). Card payments are left out (a merchant's sales are a fan-in by nature).

A collection only counts when the money flows through the hub: what a fan-in gathered leaves
again within days, what a fan-out spreads arrived just before. A landlord collecting rent on the
first of the month keeps it; a collector for a network does not. Business hubs (a company's
customers and payroll are fans by nature) count only with `business_hubs` 1, and then only
cash and transfers from or to abroad count as the money passing through (a front company
cashing out, or paying out cash it just placed); a business's fan-out counts only its payments
that the receivers withdrew in cash at once, as mules do and employees do not.

The busiest window of each hub is found with a running count over interval ends
(`common.busiest_windows`), linear after a sort even for a payroll run of thousands.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.graph.anchored import Anchored, Partition, by_role, counterparties, incident
from flows87.pipeline.graph.common import (
    ABROAD,
    CASH_CHANNELS,
    ONE_US,
    Following,
    GraphContext,
    busiest_windows,
    days,
    empty_hits,
    ends_abroad,
    finish,
    in_window,
    instance_by_first_txn,
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
    elif not inbound:
        legs = _cashed_out_if_business(ctx, legs, businesses, p)
    wide = legs.group_by(hub).agg(pl.col(spoke).n_unique().alias("n")).filter(pl.col("n") >= k)
    legs = legs.join(wide.select(hub), on=hub, how="semi").sort(hub, "ts")
    if legs.is_empty():
        return empty_hits()
    best = busiest_windows(legs, hub, spoke, window, k)
    if best.is_empty():
        return empty_hits()
    got = in_window(legs, best, hub, window).with_columns(instance_by_first_txn(name, hub))
    got = _flowing_through(ctx, got, hub, p, inbound=inbound)
    if got.is_empty():
        return empty_hits()
    # The other end of the flow, when abroad: where the collection went (fan-in), who funded
    # the payout (fan-out).
    ends = ends_abroad(
        ctx,
        got.select("instance", pl.col(hub).alias("account_id")).unique(),
        got.group_by("instance").agg(
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
            pl.col("amt").sum().alias("amount"),
        ),
        days(p["flow_days"]),
        p["min_source_share"],
        outward=inbound,
    )
    legs = pl.concat(
        [got.select("instance", "txn_id", "ts"), ends.select("instance", "txn_id", "ts")]
    )
    facts = txn_lists(legs).join(
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
            ends.select("instance", "account_id", "role"),
        ]
    )
    return finish(members, facts)


def _cashed_out_if_business(
    ctx: GraphContext, legs: pl.DataFrame, businesses: pl.DataFrame, p: dict[str, float]
) -> pl.DataFrame:
    """A business's payments to individuals are mostly wages: of a business hub's payments of at
    least `min_business_amount`, keep those the receiver took out in cash (at least
    `min_cash_out` of the amount within `flow_days`), as mules paid by a front company do;
    wages are spent over weeks."""
    others = legs.join(businesses, on="src", how="anti")
    firm = legs.join(businesses, on="src", how="semi").filter(
        pl.col("amt") >= p["min_business_amount"]
    )
    if firm.is_empty():
        return others
    lag = days(p["flow_days"])
    cash = (
        ctx.transactions.filter(pl.col("channel") == "cash_withdrawal")
        .select(pl.col("src_account").alias("dst"), pl.col("ts").alias("_t"), "amount_base")
        .join(firm.select("dst").unique(), on="dst", how="semi")
    )
    # each payment meets the receiver's next `max_scan` withdrawals from its time on (a join on
    # the receiver alone pairs every payment with every withdrawal)
    cashed = (
        Following(cash, "dst", ["amount_base"])
        .after(
            firm.select("txn_id", "dst", (pl.col("ts") - ONE_US).alias("from"), "amt"),
            "from",
            int(p["max_scan"]),
            within=lag + ONE_US,
        )
        .group_by("txn_id", "amt")
        .agg(pl.col("amount_base").sum().alias("cash"))
        .filter(pl.col("cash") >= p["min_cash_out"] * pl.col("amt"))
    )
    return pl.concat([others, firm.join(cashed.select("txn_id"), on="txn_id", how="semi")])


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
    # and money from or to abroad count as passing through: taken out of reach in cash or
    # abroad (fan-in), or placed in cash or brought from abroad just before (fan-out).
    out_of_reach = pl.col("channel").is_in(CASH_CHANNELS) | ABROAD
    moves = (  # lazy: only the columns read are filtered, not a copy of every column
        ctx.transactions.lazy()
        .filter(pl.col("src_account") != pl.col("dst_account"))
        .select(pl.col(side).alias(hub), "ts", "amount_base", out_of_reach.alias("out"))
        .join(span.lazy(), on=hub, how="inner")
        .join(firms.lazy().with_columns(pl.lit(True).alias("firm")), on=hub, how="left")
        .filter(pl.col("firm").is_null() | pl.col("out"))
    )
    if inbound:  # what left the hub from the first collection until flow_days after the last
        moves = moves.filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last") + lag)
    else:  # what reached the hub from flow_days before the first payment until the last
        moves = moves.filter(pl.col("ts") >= pl.col("first") - lag, pl.col("ts") <= pl.col("last"))
    moved = moves.group_by(hub).agg(pl.col("amount_base").sum().alias("moved")).collect()
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
    """At least `min_counterparties` distinct senders paying one non-business hub within the window.

    Cost: O(E log E) for E transactions (`common.busiest_windows`, joins on the hubs that pass);
    a hub paid by 200,000 accounts is one instance listing at most MAX_MEMBERS_PER_ROLE of
    them (the first in time), with the exact count in `n_counterparties`.
    """
    return _fan(ctx, p, inbound=True)


def fan_out(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """One non-business hub paying at least `min_counterparties` distinct receivers within the window.

    Cost: O(E log E + B · `max_scan`) for E transactions and B business payments checked for
    cash withdrawals (`common.Following`); instances as for `fan_in`.
    """
    return _fan(ctx, p, inbound=False)


def _paid_and_cashed(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """A hub's history, and its receivers' cash withdrawals (`_cashed_out_if_business`)."""
    near = counterparties(tx, accounts, p).implode()
    cash = pl.col("channel") == "cash_withdrawal"
    return incident(tx, accounts, p) | (cash & pl.col("src_account").is_in(near))


ANCHORED = {
    "fan_in": Anchored(by_role("hub")),
    "fan_out": Anchored(by_role("hub"), _paid_and_cashed),
}
"""A fan is its hub's: the hub's own transfers, and for a fan-out its receivers' withdrawals."""
