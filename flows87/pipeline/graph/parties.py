"""The party view of two patterns: one person's accounts at several banks are one node.

An FIU receives reports from many banks; entity resolution (pipeline stage `resolve`) gives the
accounts one person holds at several banks one `party_id`. A funnel whose cash is spread over
the person's accounts at three banks, or a controller paid by victims into accounts at three
banks, shows only a fraction of itself at each account, below what the account patterns
(`funnel`, `controller_hub`) ask. These patterns group by party and ask for two or more
accounts at two or more banks, so they find only what the party view adds; their hits name
the party's accounts (and the beneficiaries or senders), where the signals land.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.graph.anchored import Anchored, Partition, whole_infrastructure
from flows87.pipeline.graph.common import (
    CASH_CHANNELS,
    GraphContext,
    busiest_windows,
    days,
    empty_hits,
    finish,
    has_data,
    in_window,
    infrastructure,
    party_of,
    span_facts,
    transfers,
    txn_lists,
)
from flows87.pipeline.graph.context import TRANSFER
from flows87.pipeline.graph.fans import behaviour_flagged, sender_signals


def holders(ctx: GraphContext) -> pl.DataFrame:
    """account_id, party, bank (the account itself stands for a party without an id)."""
    return party_of(ctx.accounts).join(
        ctx.accounts.select("account_id", pl.col("bank_id").alias("bank")), on="account_id"
    )


def spread_parties(ctx: GraphContext, min_accounts: float, min_banks: float) -> pl.DataFrame:
    """party: the parties holding `min_accounts` accounts or more at `min_banks` banks or more,
    the only ones either pattern can name. One bank's data (or an FIU's before resolution) has
    none, and both patterns stop here instead of grouping every deposit or transfer by party
    (at 5M transactions, 2.3 s of party_funnel). O(A) for A accounts."""

    def make() -> pl.DataFrame:
        return (
            holders(ctx)
            .filter(pl.col("party").is_not_null())
            .group_by("party")
            .agg(pl.len().alias("a"), pl.col("bank").n_unique().alias("b"))
            .filter(pl.col("a") >= min_accounts, pl.col("b") >= min_banks)
            .select("party")
        )

    return ctx.memo(f"spread_parties:{min_accounts}:{min_banks}", make)


def _party_deposits(ctx: GraphContext, business: bool) -> pl.DataFrame:
    """Cash deposits at a known place: txn_id, ts, account, party, bank, location_id, amt."""
    dep = ctx.transactions.filter(
        pl.col("channel") == "cash_deposit",
        pl.col("src_account") != pl.col("dst_account"),
        pl.col("location_id").is_not_null(),
    ).select(
        "txn_id",
        "ts",
        pl.col("dst_account").alias("account"),
        "location_id",
        pl.col("amount_base").alias("amt"),
    )
    if not business:
        firms = ctx.accounts.filter(pl.col("kind") == "business").select(
            pl.col("account_id").alias("account")
        )
        dep = dep.join(firms, on="account", how="anti")
    return dep.join(
        holders(ctx).rename({"account_id": "account"}), on="account", how="left"
    ).with_columns(pl.coalesce("party", pl.lit("account:") + pl.col("account")))


def party_funnel(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Cash paid into the accounts of one party at `min_locations` places or more within
    `window_days`, over `min_accounts` of its accounts at `min_banks` banks or more, most of
    their inflow of that time leaving the party within `flow_hours`; names the party's accounts
    that took cash and the beneficiaries of at least `min_beneficiary_share` of the outflow.

    A funnel spread over banks (FinCEN 2014; FATF/APG 2018): each bank sees a few deposits at
    one or two of its branches, under the account pattern `funnel`; only the person's accounts
    together show cash from many places moved on at once. Transfers between the party's own
    accounts are neither inflow nor outflow.

    Cost: O(D log D + E) for D cash deposits and E transactions: the busiest window of each
    party by `common.busiest_windows`, then hash joins on the few parties that pass.
    """
    if not has_data(ctx.transactions, "location_id"):
        return empty_hits()
    window, k = days(p["window_days"]), int(p["min_locations"])
    spread = spread_parties(ctx, p["min_accounts"], p["min_banks"])
    if spread.is_empty():
        return empty_hits()
    dep = _party_deposits(ctx, bool(p["business_accounts"])).join(spread, on="party", how="semi")
    wide = dep.group_by("party").agg(
        pl.col("location_id").n_unique().alias("n"),
        pl.len().alias("m"),
        pl.col("account").n_unique().alias("a"),
        pl.col("bank").n_unique().alias("b"),
    )
    dep = dep.join(
        wide.filter(
            pl.col("n") >= k,
            pl.col("m") >= p["min_deposits"],
            pl.col("a") >= p["min_accounts"],
            pl.col("b") >= p["min_banks"],
        ).select("party"),
        on="party",
        how="semi",
    )
    if dep.is_empty():
        return empty_hits()
    got = in_window(dep, busiest_windows(dep, "party", "location_id", window, k), "party", window)
    span = (
        got.group_by("party")
        .agg(
            pl.len().alias("n_deposits"),
            pl.col("location_id").n_unique().alias("n_locations"),
            pl.col("account").n_unique().alias("n_accounts"),
            pl.col("bank").drop_nulls().unique().sort().alias("banks"),
            pl.col("amt").sum().alias("cash_amount"),
            pl.col("ts").min().alias("first"),
            pl.col("ts").max().alias("last"),
            pl.col("txn_id").sort_by("ts", "txn_id").first().alias("first_txn"),
        )
        .with_columns(pl.col("banks").list.len().alias("n_banks"))
        .filter(
            pl.col("n_deposits") >= p["min_deposits"],
            pl.col("cash_amount") >= p["min_amount"],
            pl.col("n_accounts") >= p["min_accounts"],
            pl.col("n_banks") >= p["min_banks"],
        )
    )
    if span.is_empty():
        return empty_hits()
    mine = got.join(span.select("party"), on="party", how="semi").select("party", "account")
    mine = mine.unique()
    who = holders(ctx).select("account_id", "party")
    lag = pl.duration(microseconds=int(p["flow_hours"] * 3_600_000_000))
    src = who.rename({"account_id": "src_account", "party": "src_party"})
    dst = who.rename({"account_id": "dst_account", "party": "dst_party"})
    ours = mine.get_column("account").implode()
    tx = (
        ctx.transactions.filter(
            pl.col("src_account") != pl.col("dst_account"),
            # only the candidates' money in and out: the parties of every transfer are not needed
            pl.col("dst_account").is_in(ours) | pl.col("src_account").is_in(ours),
        )
        .join(src, on="src_account", how="left")
        .join(dst, on="dst_account", how="left")
        # the party's own accounts left out (an account missing from the table is its own
        # party), but not cash: a goAML report names the holder as the depositor, so entity
        # resolution gives the walk-in's pseudo-account (person:...) the holder's party, and
        # cash paid in or taken out by the person is still money entering or leaving
        .filter(
            pl.col("src_party").ne_missing(pl.col("dst_party"))
            | pl.col("src_party").is_null()
            | pl.col("channel").is_in(CASH_CHANNELS)
        )
    )
    inflow = (
        tx.join(mine.rename({"account": "dst_account"}), on="dst_account")
        .join(span, on="party")
        .filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last"))
        .group_by("party")
        .agg(pl.col("amount_base").sum().alias("in_amount"))
    )
    out = (
        tx.join(mine.rename({"account": "src_account"}), on="src_account")
        .join(span.select("party", "first", "last"), on="party")
        .filter(pl.col("ts") >= pl.col("first"), pl.col("ts") <= pl.col("last") + lag)
        .select("party", "dst_account", "txn_id", "ts", "channel", "amount_base")
    )
    moved = out.group_by("party").agg(pl.col("amount_base").sum().alias("out_amount"))
    span = (
        span.join(inflow, on="party", how="left")
        .join(moved, on="party", how="left")
        .with_columns(
            (pl.col("out_amount").fill_null(0.0) / pl.col("in_amount"))
            .clip(upper_bound=1.0)
            .fill_null(0.0)
            .alias("flow_through")
        )
        .filter(pl.col("flow_through") >= p["min_flow_through"])
        .with_columns((pl.lit("party_funnel:") + pl.col("first_txn")).alias("instance"))
    )
    if span.is_empty():
        return empty_hits()
    ids = span.select("party", "instance", "out_amount")
    out = out.join(ids, on="party")
    ends = out.filter(~pl.col("channel").is_in(CASH_CHANNELS)).filter(
        pl.col("amount_base").sum().over("party", "dst_account")
        >= p["min_beneficiary_share"] * pl.col("out_amount")
    )
    deposits = got.join(ids, on="party")
    legs = pl.concat(
        [deposits.select("instance", "txn_id", "ts"), out.select("instance", "txn_id", "ts")]
    )
    facts = txn_lists(legs).join(
        span.select(
            "instance",
            "party",
            "n_deposits",
            "n_locations",
            "n_accounts",
            "n_banks",
            "banks",
            pl.col("cash_amount").round(2),
            pl.col("out_amount").fill_null(0.0).round(2),
            pl.col("flow_through").round(4),
            pl.lit(p["flow_hours"]).alias("flow_hours"),
        ).join(legs.group_by("instance").agg(span_facts()), on="instance"),
        on="instance",
    )
    members = pl.concat(
        [
            deposits.sort("ts", "txn_id").select(
                "instance", pl.col("account").alias("account_id"), pl.lit("funnel").alias("role")
            ),
            ends.sort("ts", "txn_id").select(
                "instance",
                pl.col("dst_account").alias("account_id"),
                pl.lit("beneficiary").alias("role"),
            ),
        ]
    )
    return finish(members, facts)


def flagged_outflow(ctx: GraphContext, tx: pl.LazyFrame, flagged: pl.DataFrame) -> pl.DataFrame:
    """src, outflow: everything each flagged account paid out of `tx` (cash withdrawals too),
    memoised: a partition's context is primed with it from every transaction
    (`_prime_controller`), since a sender's outflow reaches far beyond the controller's
    partition. Each sender's amounts are summed in sorted order, so the sum is the same to the
    last bit whichever rows, order or engine found them."""

    def make() -> pl.DataFrame:
        paid = (  # lazy: only the flagged senders' amounts are read
            tx.filter(pl.col("src_account") != pl.col("dst_account"))
            .select(pl.col("src_account").alias("src"), "amount_base")
            .join(flagged.lazy().select("src"), on="src", how="semi")
            .collect(engine="streaming")
        )
        return paid.group_by("src").agg(pl.col("amount_base").sort().sum().alias("outflow"))

    return ctx.memo("flagged_outflow:party_controller", make)


def party_controller(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """One party receiving, into `min_accounts` or more of its accounts at `min_banks` banks or
    more, most of the outflow of accounts of `min_flagged_senders` other parties that behaviour
    rules flagged, each paying it `min_payments_per_sender` times on average.

    A controller collecting victims' earnings (FATF/APG 2018) has them pay into accounts at
    several banks, so that no account is the hub of many flagged payers (the account pattern
    `controller_hub`). Senders are counted as parties too: one victim's two accounts are one
    sender. Transfers between one party's own accounts are left out, and accounts trading with
    `max_hub_share` of all accounts (infrastructure) are never the controller's.

    Cost: O(E log E) for E transfers (hash joins and grouped sums over the flagged senders'
    transfers).
    """
    flagged = behaviour_flagged(ctx)
    spread = spread_parties(ctx, p["min_accounts"], p["min_banks"])
    if flagged is None or spread.is_empty():
        return empty_hits()
    who = holders(ctx)
    outflow = flagged_outflow(ctx, ctx.transactions.lazy(), flagged)
    sent = (
        transfers(ctx)
        .join(flagged.select("src"), on="src", how="semi")
        .join(
            infrastructure(ctx, p["max_hub_share"]),
            left_on="dst",
            right_on="account_id",
            how="anti",
        )
        .join(
            who.select(pl.col("account_id").alias("src"), pl.col("party").alias("src_party")),
            on="src",
        )
        .join(
            who.join(spread, on="party", how="semi").select(
                pl.col("account_id").alias("dst"), pl.col("party").alias("hub"), "bank"
            ),
            on="dst",
        )
        .filter(pl.col("src_party") != pl.col("hub"))
    )
    edges = (
        sent.group_by("src", "hub")
        .agg(
            pl.col("src_party").first(),
            pl.col("amt").sort().sum().alias("sent"),
            pl.len().alias("payments"),
        )
        .join(outflow, on="src")
        .with_columns((pl.col("sent") / pl.col("outflow")).alias("share"))
        # a hub's mean share summed in one order, whichever rows or threads found its senders
        .sort("hub", "src")
    )
    paid = sent.group_by("hub").agg(
        pl.col("dst").n_unique().alias("controller_accounts"),
        pl.col("bank").drop_nulls().unique().sort().alias("banks"),
    )
    hubs = (
        edges.group_by("hub", maintain_order=True)
        .agg(
            pl.col("src_party").n_unique().alias("flagged_senders"),
            pl.col("src").n_unique().alias("flagged_accounts"),
            pl.col("share").mean().alias("mean_share"),
            (pl.col("payments").sum() / pl.col("src_party").n_unique()).alias(
                "payments_per_sender"
            ),
        )
        .join(paid, on="hub")
        .with_columns(pl.col("banks").list.len().alias("n_banks"))
        .filter(
            pl.col("flagged_senders") >= p["min_flagged_senders"],
            pl.col("mean_share") >= p["min_share"],
            pl.col("payments_per_sender") >= p["min_payments_per_sender"],
            pl.col("controller_accounts") >= p["min_accounts"],
            pl.col("n_banks") >= p["min_banks"],
        )
        .with_columns((pl.lit("party_controller:") + pl.col("hub")).alias("instance"))
    )
    if hubs.is_empty():
        return empty_hits()
    sent = sent.join(hubs.select("hub", "instance"), on="hub")
    flagged_by = sender_signals(sent, flagged)
    facts = (
        txn_lists(sent)
        .join(
            sent.group_by("instance").agg(pl.len().alias("n_transfers"), *span_facts(amount="amt")),
            on="instance",
        )
        .join(
            hubs.select(
                "instance",
                pl.col("hub").alias("party"),
                "flagged_senders",
                "flagged_accounts",
                "controller_accounts",
                "n_banks",
                "banks",
                pl.col("mean_share").round(4),
                pl.col("payments_per_sender").round(2),
            ),
            on="instance",
        )
        .join(flagged_by, on="instance")
    )
    members = pl.concat(
        [
            sent.group_by("instance", "dst")
            .agg(pl.col("amt").sum().alias("_amt"))
            .sort(["instance", "_amt", "dst"], descending=[False, True, False])
            .select(
                "instance", pl.col("dst").alias("account_id"), pl.lit("controller").alias("role")
            ),
            sent.group_by("instance", "src")
            .agg(pl.col("amt").sum().alias("_amt"))
            .sort(["instance", "_amt", "src"], descending=[False, True, False])
            .select("instance", pl.col("src").alias("account_id"), pl.lit("sender").alias("role")),
        ]
    )
    return finish(members, facts)


def party_key(accounts: pl.DataFrame) -> pl.Expr:
    """The party of each row of `accounts` as `context.party_of` names it (party_id, else
    "account:<id>"), on a table that may lack party_id (a partition's reach reads the accounts
    file as it is)."""
    own = pl.lit("account:") + pl.col("account_id")
    return pl.coalesce("party_id", own) if "party_id" in accounts.columns else own


def party_accounts(accounts: pl.DataFrame, p: Partition) -> pl.Series:
    """The accounts of the partition's parties (every account of a party is in its party's
    partition, whichever partition the account's own hash falls in)."""
    return accounts.filter(p.has(party_key(accounts))).get_column("account_id")


def by_party(hits: pl.DataFrame) -> pl.DataFrame:
    """Instances anchored at the party their evidence names (`party`: the structurer, the
    funnel's holder, the controller)."""
    key = pl.col("evidence").str.json_path_match("$.party").alias("key")
    return hits.select("instance", key).unique("instance", maintain_order=True)


LOCATED_DEPOSIT = (
    (pl.col("channel") == "cash_deposit")
    & pl.col("location_id").is_not_null()
    & (pl.col("src_account") != pl.col("dst_account"))
).fill_null(False)
"""Cash paid into an account at a known place: what both funnels start from."""


def cash_takers(tx: pl.LazyFrame, mine: pl.Expr) -> pl.Series:
    """The accounts (`mine`: a condition on dst_account) that took cash at a known place, the
    only ones a funnel (account or party) can name as its own: at 5M transactions 77k of 500k
    accounts, whose history is half the transactions."""
    took = tx.filter(LOCATED_DEPOSIT & mine).select(pl.col("dst_account").alias("a"))
    return took.unique().collect(engine="streaming").get_column("a")


def history_of(accounts: pl.Series) -> pl.Expr:
    """The transactions to or from `accounts`."""
    them = accounts.implode()
    return pl.col("src_account").is_in(them) | pl.col("dst_account").is_in(them)


def _party_flows(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The history of the accounts of the partition's parties that took cash at a known place
    (their deposits, money in, money out): all a party funnel reads."""
    mine = pl.col("dst_account").is_in(party_accounts(accounts, p).implode())
    return history_of(cash_takers(tx, mine))


def _paid_to_party(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The transfers into accounts of the partition's parties: a controller's takings (its
    senders' whole outflow is primed, `_prime_controller`)."""
    return TRANSFER & pl.col("dst_account").is_in(party_accounts(accounts, p).implode())


def _prime_controller(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """The tables party_controller derives from the whole graph: the infrastructure it leaves
    out, and the flagged senders' whole outflow (the denominator of each sender's share)."""
    whole_infrastructure(tx, ctx, values)
    flagged = behaviour_flagged(ctx)
    if flagged is not None:
        flagged_outflow(ctx, tx, flagged)


ANCHORED = {
    "party_funnel": Anchored(by_party, _party_flows),
    "party_controller": Anchored(by_party, _paid_to_party, _prime_controller),
}
"""A party pattern is its party's: a funnel reads the history of its party's accounts that took
cash; a controller the transfers into its party's accounts, its senders' outflow primed."""
