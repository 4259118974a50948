"""Forced-labour patterns around payroll: wages taken back, and workers housed together.

Wages are what the feature table calls them: ACH or wire payments from a business account to an
individual's. Without account kinds (AMLworld, PaySim) there are no wages, hence no hits.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.graph.anchored import Anchored, Partition, by_role, whole_infrastructure
from flows87.pipeline.graph.common import (
    Following,
    GraphContext,
    days,
    empty_hits,
    finish,
    infrastructure,
    party_of,
    span_facts,
    transfers,
    txn_lists,
)

WAGE_CHANNELS = ("ach", "wire")


def wages(ctx: GraphContext) -> pl.DataFrame:
    """employer, worker, wage_txn, wage_ts, wage: business -> individual ACH/wire payments."""
    kinds = ctx.accounts.select("account_id", "kind")
    return (  # lazy: only the columns read are filtered, not a copy of every column
        ctx.transactions.lazy()
        .filter(
            pl.col("channel").is_in(WAGE_CHANNELS), pl.col("src_account") != pl.col("dst_account")
        )
        .join(
            kinds.lazy().filter(pl.col("kind") == "business"),
            left_on="src_account",
            right_on="account_id",
            how="semi",
        )
        .join(
            kinds.lazy().filter(pl.col("kind") == "individual"),
            left_on="dst_account",
            right_on="account_id",
            how="semi",
        )
        .select(
            pl.col("src_account").alias("employer"),
            pl.col("dst_account").alias("worker"),
            pl.col("txn_id").alias("wage_txn"),
            pl.col("ts").alias("wage_ts"),
            pl.col("amount_base").alias("wage"),
        )
        .collect()
    )


def _payroll(ctx: GraphContext, min_payees: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Wages of employers with at least `min_payees` distinct workers, and their worker counts."""
    w = wages(ctx)
    staff = (
        w.group_by("employer")
        .agg(pl.col("worker").n_unique().alias("workers_paid"))
        .filter(pl.col("workers_paid") >= min_payees)
    )
    return w.join(staff, on="employer", how="semi"), staff


def payroll_recapture(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Most of an employer's workers pass much of each wage to one account within days.

    Cost: O(E log E + W · `max_scan`) for E transfers and W wages (`common.Following`). One
    instance per employer, listing at most MAX_MEMBERS_PER_ROLE workers.
    """
    w, staff = _payroll(ctx, p["min_workers"])
    infra = infrastructure(ctx, p["max_hub_share"])
    w = w.join(infra, left_on="employer", right_on="account_id", how="anti")
    if w.is_empty():
        return empty_hits()
    onward = (  # lazy: the five columns read are copied, not every column of every transfer
        transfers(ctx)
        .lazy()
        .join(infra.lazy(), left_on="dst", right_on="account_id", how="anti")
        .select(
            pl.col("src").alias("worker"),
            pl.col("dst").alias("recapturer"),
            pl.col("txn_id").alias("on_txn"),
            pl.col("ts").alias("_t"),
            pl.col("amt").alias("on_amt"),
        )
        .join(w.lazy().select("worker").unique(), on="worker", how="semi")
        .collect()
    )
    # Each wage meets the worker's next `max_scan` payments within `max_days`, not every payment
    # the worker ever made (quadratic for a worker paid and paying again and again).
    passed = (
        Following(onward, "worker", ["on_txn"])
        .after(w, "wage_ts", int(p["max_scan"]), within=days(p["max_days"]))
        .rename({"_t": "on_ts"})
        .group_by("employer", "worker", "wage_txn", "wage_ts", "wage", "recapturer")
        .agg(pl.col("on_amt").sum().alias("on_sum"), pl.col("on_txn"), pl.col("on_ts"))
        .filter(pl.col("on_sum") >= p["min_fraction"] * pl.col("wage"))
    )
    best = (
        passed.group_by("employer", "recapturer")
        .agg(
            pl.col("worker").n_unique().alias("workers_recaptured"),
            pl.col("on_sum").sum().alias("recaptured"),
        )
        .join(staff, on="employer")
        .with_columns((pl.col("workers_recaptured") / pl.col("workers_paid")).alias("share"))
        .filter(pl.col("share") >= p["min_share"])
        .sort(
            ["employer", "workers_recaptured", "recaptured", "recapturer"],
            descending=[False, True, True, False],
        )
        .unique("employer", keep="first", maintain_order=True)
        .with_columns((pl.lit("payroll_recapture:") + pl.col("employer")).alias("instance"))
    )
    if best.is_empty():
        return empty_hits()
    got = passed.join(
        best.select("employer", "recapturer", "instance"), on=["employer", "recapturer"]
    )
    legs = pl.concat(
        [
            got.select(
                "instance", pl.col("wage_txn").alias("txn_id"), pl.col("wage_ts").alias("ts")
            ),
            got.select(
                "instance", pl.col("on_txn").alias("txn_id"), pl.col("on_ts").alias("ts")
            ).explode("txn_id", "ts"),
        ]
    )
    delay = (pl.col("on_ts").list.max() - pl.col("wage_ts")).dt.total_seconds() / 3600
    facts = (
        txn_lists(legs)
        .join(
            best.select(
                "instance",
                "employer",
                "recapturer",
                pl.col("workers_paid").alias("workers"),
                pl.col("workers_recaptured").alias("recapturing_workers"),
                pl.col("share").round(4),
            ),
            on="instance",
        )
        .join(
            got.group_by("instance").agg(
                pl.col("wage").sum().round(2).alias("wages_amount"),
                pl.col("on_sum").sum().round(2).alias("recaptured_amount"),
                (pl.col("on_sum").sum() / pl.col("wage").sum())
                .round(4)
                .alias("recaptured_fraction"),
                delay.max().round(2).alias("max_hours_to_recapture"),
            ),
            on="instance",
        )
        .join(legs.group_by("instance").agg(span_facts()), on="instance")
    )
    members = pl.concat(
        [
            best.select(
                "instance", pl.col("employer").alias("account_id"), pl.lit("employer").alias("role")
            ),
            got.sort("worker").select(
                "instance", pl.col("worker").alias("account_id"), pl.lit("worker").alias("role")
            ),
            best.select(
                "instance",
                pl.col("recapturer").alias("account_id"),
                pl.lit("recapturer").alias("role"),
            ),
        ]
    )
    return finish(members, facts)


def shared_address_workers(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Several payroll payees of one employer (distinct parties) share one address or phone.

    Cost: O(W log W) for W wages (joins and counts); an instance lists at most
    MAX_MEMBERS_PER_ROLE workers.
    """
    w, staff = _payroll(ctx, p["min_payees"])
    if w.is_empty():
        return empty_hits()
    people = party_of(ctx.accounts).join(
        ctx.accounts.select("account_id", "address", "phone"), on="account_id"
    )
    ids = pl.concat(
        [
            people.select(
                pl.col("account_id").alias("worker"),
                "party",
                pl.lit(c).alias("identifier"),
                pl.col(c).str.strip_chars().str.to_lowercase().alias("value"),
            )
            for c in ("address", "phone")
        ]
    ).filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
    groups = (
        w.select("employer", "worker")
        .unique()
        .join(ids, on="worker")
        .group_by("employer", "identifier", "value")
        .agg(pl.col("party").n_unique().alias("sharing"))
        .filter(pl.col("sharing") >= p["min_sharing"])
        .with_columns(
            (
                pl.lit("shared_address_workers:")
                + pl.col("employer")
                + ":"
                + pl.col("identifier")
                + ":"
                + pl.col("value")
            ).alias("instance")
        )
    )
    if groups.is_empty():
        return empty_hits()
    got = w.join(ids, on="worker").join(groups, on=["employer", "identifier", "value"])
    facts = (
        txn_lists(
            got.select(
                "instance", pl.col("wage_txn").alias("txn_id"), pl.col("wage_ts").alias("ts")
            )
        )
        .join(
            groups.join(staff, on="employer").select(
                "instance",
                "employer",
                "identifier",
                "value",
                pl.col("workers_paid").alias("payees"),
                "sharing",
            ),
            on="instance",
        )
        .join(
            got.group_by("instance").agg(
                pl.len().alias("n_wages"), *span_facts("wage_ts", amount="wage")
            ),
            on="instance",
        )
    )
    members = pl.concat(
        [
            got.select(
                "instance", pl.col("employer").alias("account_id"), pl.lit("employer").alias("role")
            ).unique(maintain_order=True),
            got.sort("worker").select(
                "instance", pl.col("worker").alias("account_id"), pl.lit("worker").alias("role")
            ),
        ]
    )
    return finish(members, facts)


def _wage_rows(accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The partition's employers' wages (`wages`): ACH/wire payments from one of its business
    accounts to an individual's."""
    kind = accounts.lazy().select("account_id", "kind")
    business = kind.filter(pl.col("kind") == "business").select("account_id").collect()
    people = kind.filter(pl.col("kind") == "individual").select("account_id").collect()
    return (
        p.has("src_account")
        & pl.col("channel").is_in(WAGE_CHANNELS)
        & (pl.col("src_account") != pl.col("dst_account"))
        & pl.col("src_account").is_in(business["account_id"].implode())
        & pl.col("dst_account").is_in(people["account_id"].implode())
    ).fill_null(False)


def employers_wages(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """Reach of shared_address_workers: the wages the partition's employers paid."""
    return _wage_rows(accounts, p)


def wages_and_onward(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """Reach of payroll_recapture: the partition's employers' wages, and every payment their
    workers made (the onward payments each wage is matched with)."""
    wage = _wage_rows(accounts, p)
    workers = tx.filter(wage).select(pl.col("dst_account").unique()).collect(engine="streaming")
    return wage | pl.col("src_account").is_in(workers["dst_account"].implode())


ANCHORED = {
    "payroll_recapture": Anchored(by_role("employer"), wages_and_onward, whole_infrastructure),
    "shared_address_workers": Anchored(by_role("employer"), employers_wages),
}
"""An instance of either pattern is its employer's (one per employer, or per employer and shared
value): it reads that employer's wages alone, and for payroll_recapture its workers' payments
onward and the whole graph's infrastructure accounts (primed, as a partition sees only part of a
processor's counterparties)."""
