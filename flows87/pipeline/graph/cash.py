"""Cash placement patterns: a funnel account and where its cash went, and deposits just under
the reporting threshold spread over one person's accounts.

Account rules read features of tumbling windows, so a funnel or a run of structured deposits
that straddles two windows shows only half of itself in each. These patterns anchor their
windows at each deposit instead (rolling), and name the accounts on the other side: the
beneficiaries of a funnel's outflow, every account of a structuring person.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.graph.anchored import Anchored, Partition, by_role
from flows87.pipeline.graph.common import (
    CASH_CHANNELS,
    ONE_US,
    GraphContext,
    busiest_windows,
    covering,
    days,
    empty_hits,
    finish,
    has_data,
    in_window,
    instance_by_first_txn,
    party_of,
    span_facts,
    txn_lists,
)
from flows87.pipeline.graph.parties import by_party, cash_takers, history_of, party_accounts


def _deposits(ctx: GraphContext) -> pl.DataFrame:
    """Cash deposits: txn_id, ts, account (the account credited), location_id, amount."""
    return ctx.transactions.filter(
        pl.col("channel") == "cash_deposit", pl.col("src_account") != pl.col("dst_account")
    ).select(
        "txn_id",
        "ts",
        pl.col("dst_account").alias("account"),
        "location_id",
        pl.col("amount_base").alias("amt"),
    )


def funnel(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Cash paid into one account at `min_locations` places or more within `window_days`, most
    of the account's inflow of that time leaving again within `flow_hours`; names the account
    and the beneficiaries of the transfers that took at least `min_beneficiary_share` of it.

    FinCEN (2014) and FATF/APG (2018) describe funnel accounts: cash deposited at branches in
    several places, wired on or drawn out elsewhere soon after. Businesses bank their takings at
    several branches, so business accounts count only with `business_accounts` 1.

    Cost: O(E log E) for E transactions: the busiest window of each account is found with
    `common.busiest_windows`, and its flows are joins on the few accounts that pass.
    """
    if not has_data(ctx.transactions, "location_id"):
        return empty_hits()
    window, k = days(p["window_days"]), int(p["min_locations"])
    dep = _deposits(ctx).filter(pl.col("location_id").is_not_null())
    if not p["business_accounts"]:
        firms = ctx.accounts.filter(pl.col("kind") == "business").select(
            pl.col("account_id").alias("account")
        )
        dep = dep.join(firms, on="account", how="anti")
    wide = dep.group_by("account").agg(
        pl.col("location_id").n_unique().alias("n"), pl.len().alias("m")
    )
    dep = dep.join(
        wide.filter(pl.col("n") >= k, pl.col("m") >= p["min_deposits"]).select("account"),
        on="account",
        how="semi",
    )
    if dep.is_empty():
        return empty_hits()
    best = busiest_windows(dep, "account", "location_id", window, k)
    got = in_window(dep, best, "account", window)
    span = (
        got.group_by("account")
        .agg(
            pl.len().alias("n_deposits"),
            pl.col("location_id").n_unique().alias("n_locations"),
            pl.col("amt").sum().alias("cash_amount"),
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
            pl.col("txn_id").sort_by("ts", "txn_id").first().alias("first_txn"),
        )
        .filter(pl.col("n_deposits") >= p["min_deposits"], pl.col("cash_amount") >= p["min_amount"])
    )
    if span.is_empty():
        return empty_hits()
    lag = pl.duration(microseconds=int(p["flow_hours"] * 3_600_000_000))
    # lazy: only the candidates' transactions are copied, not every column of every one
    tx = ctx.transactions.lazy().filter(pl.col("src_account") != pl.col("dst_account"))
    inflow = (
        tx.join(span.lazy(), left_on="dst_account", right_on="account")
        .filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last"))
        .group_by(pl.col("dst_account").alias("account"))
        .agg(pl.col("amount_base").sum().alias("in_amount"))
        .collect()
    )
    out = (
        tx.join(span.lazy(), left_on="src_account", right_on="account")
        .filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last") + lag)
        .select(
            pl.col("src_account").alias("account"),
            pl.col("dst_account").alias("party"),
            "txn_id",
            "ts",
            "channel",
            "amount_base",
        )
        .collect()
    )
    moved = out.group_by("account").agg(pl.col("amount_base").sum().alias("out_amount"))
    span = (
        span.join(inflow, on="account", how="left")
        .join(moved, on="account", how="left")
        .with_columns(
            (pl.col("out_amount").fill_null(0.0) / pl.col("in_amount"))
            .clip(upper_bound=1.0)
            .alias("flow_through")
        )
        .filter(pl.col("flow_through") >= p["min_flow_through"])
        .with_columns((pl.lit("funnel:") + pl.col("first_txn")).alias("instance"))
    )
    if span.is_empty():
        return empty_hits()
    out = out.join(span.select("account", "instance", "out_amount"), on="account")
    ends = out.filter(~pl.col("channel").is_in(CASH_CHANNELS)).filter(
        pl.col("amount_base").sum().over("account", "party")
        >= p["min_beneficiary_share"] * pl.col("out_amount")
    )
    legs = pl.concat(
        [
            got.join(span.select("account", "instance"), on="account").select(
                "instance", "txn_id", "ts"
            ),
            out.select("instance", "txn_id", "ts"),
        ]
    )
    facts = txn_lists(legs).join(
        span.select(
            "instance",
            pl.col("account").alias("funnel"),
            "n_deposits",
            "n_locations",
            pl.col("cash_amount").round(2),
            pl.col("out_amount").fill_null(0.0).round(2),
            pl.col("flow_through").round(4),
            pl.lit(p["flow_hours"]).alias("flow_hours"),
        ).join(
            legs.group_by("instance").agg(span_facts()),
            on="instance",
        ),
        on="instance",
    )
    members = pl.concat(
        [
            span.select(
                "instance", pl.col("account").alias("account_id"), pl.lit("funnel").alias("role")
            ),
            ends.sort("ts", "txn_id").select(
                "instance", pl.col("party").alias("account_id"), pl.lit("beneficiary").alias("role")
            ),
        ]
    )
    return finish(members, facts)


def party_structuring(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Cash deposits just under the reporting threshold (`threshold`, within `band` of it) into
    the accounts of one party: at least `min_deposits` within `window_days`, over at least
    `min_accounts` of its accounts. Names every account that took one.

    Currency transaction reports aggregate one person's cash transactions of a day across
    accounts (31 CFR 1010.313), so a structurer spreads deposits over several accounts, often
    at several banks, keeping each one small and each account's own count low (FATF; FinCEN).
    The window is anchored at each deposit (rolling), unlike the tumbling windows of the
    account rule `fa_structuring`.

    Cost: O(D log D) for D cash deposits (windows counted with `common.covering`).
    """
    window, n = days(p["window_days"]), int(p["min_deposits"])
    low = p["threshold"] * (1 - p["band"])
    dep = (
        _deposits(ctx)
        .filter(pl.col("amt") >= low, pl.col("amt") < p["threshold"])
        .join(party_of(ctx.accounts).rename({"account_id": "account"}), on="account", how="left")
        .with_columns(pl.coalesce("party", pl.lit("account:") + pl.col("account")))
    )
    wide = dep.group_by("party").agg(pl.len().alias("m"), pl.col("account").n_unique().alias("a"))
    dep = dep.join(
        wide.filter(pl.col("m") >= n, pl.col("a") >= p["min_accounts"]).select("party"),
        on="party",
        how="semi",
    ).sort("party", "ts", "txn_id")
    if dep.is_empty():
        return empty_hits()
    # the windows (t - w, t] ending at each deposit: a deposit at s falls in them for t in
    # [s, s + w) (`covering`: linear, where a rolling count visits every deposit of every window)
    anchors = dep.select("party", pl.col("ts").alias("anchor")).unique()
    span = (pl.col("ts"), pl.col("ts") + window - ONE_US)
    best = (
        covering(dep, ["party"], None, anchors, *span, name="m")
        .join(covering(dep, ["party"], "account", anchors, *span, name="a"), on=["party", "anchor"])
        .filter(pl.col("m") >= n, pl.col("a") >= p["min_accounts"])
        .sort(["party", "m", "anchor"], descending=[False, True, False])
        .unique("party", keep="first", maintain_order=True)
        .select("party", "anchor")
    )
    got = in_window(dep, best, "party", window)
    if got.is_empty():
        return empty_hits()
    got = got.with_columns(instance_by_first_txn("party_structuring", "party"))
    facts = txn_lists(got).join(
        got.group_by("instance").agg(
            pl.col("party").first(),
            pl.len().alias("n_deposits"),
            pl.col("account").n_unique().alias("n_accounts"),
            pl.col("location_id").drop_nulls().n_unique().alias("n_locations"),
            pl.col("amt").max().round(2).alias("max_amount"),
            pl.lit(p["threshold"]).alias("threshold"),
            *span_facts(amount="amt"),
        ),
        on="instance",
    )
    members = got.sort("instance", "ts", "txn_id").select(
        "instance", pl.col("account").alias("account_id"), pl.lit("depositor").alias("role")
    )
    return finish(members, facts)


def _deposits_of_parties(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The cash deposits into accounts of the partition's parties, an account missing from the
    accounts table standing for its own party ("account:<id>", as `party_structuring` names
    it): all a structurer's instance reads."""
    into = pl.col("dst_account")
    mine = into.is_in(party_accounts(accounts, p).implode()) | p.has(pl.lit("account:") + into)
    return (pl.col("channel") == "cash_deposit") & mine


def _cash_takers_history(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The history of the partition's accounts that took cash at a known place (a funnel's
    deposits, inflow and outflow): about a quarter of an account partition's rows."""
    return history_of(cash_takers(tx, p.has("dst_account")))


ANCHORED = {
    "funnel": Anchored(by_role("funnel"), _cash_takers_history),
    "party_structuring": Anchored(by_party, _deposits_of_parties),
}
"""A funnel is its account's: the deposits, inflow and outflow of an account that took cash;
structuring is its party's: the cash deposits into the party's accounts."""
