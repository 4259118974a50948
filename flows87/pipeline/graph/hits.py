"""What a graph pattern returns: hit rows (HIT_SCHEMA) with each instance's evidence as JSON.

A pattern returns one row per account taking part in a found instance, so that hits join the
signal table like any other evidence; the instance's facts go into one JSON `evidence` text an
investigator reads. These helpers turn two small frames (members with roles, facts per
instance) into that shape with polars expressions, never a loop over rows.
"""

from __future__ import annotations

import polars as pl

HIT_SCHEMA = pl.Schema(
    {
        "instance": pl.String(),
        "account_id": pl.String(),
        "role": pl.String(),
        "txn_ids": pl.List(pl.String()),
        "evidence": pl.String(),
    }
)

MAX_TXNS_PER_INSTANCE = 500
"""Evidence keeps at most this many transaction ids per instance (the counts stay exact)."""

MAX_MEMBERS_PER_ROLE = 100
"""An instance lists at most this many accounts of each role (the first, in display order); the
evidence then says how many more took part (`more_accounts`). Every listed account becomes a hit
row carrying the instance's evidence, which lists them all, so an instance of n accounts costs
n^2 downstream: a hub paid by 200,000 accounts would otherwise write 200,000 copies of a list of
200,000 ids. The hub, controller or beneficiary of an instance is a role of its own, so it is
always listed."""

ISO = "%Y-%m-%dT%H:%M:%SZ"


def empty_hits() -> pl.DataFrame:
    return pl.DataFrame(schema=HIT_SCHEMA)


def finish(members: pl.DataFrame, facts: pl.DataFrame) -> pl.DataFrame:
    """Hit rows from members (instance, account_id, role, in display order) and per-instance facts.

    `facts` has `instance`, `txn_ids` and any evidence columns; datetimes become ISO text and the
    instance's accounts are added to the evidence as "accounts". At most MAX_MEMBERS_PER_ROLE
    accounts of each role are listed; an instance with more says in its evidence how many were
    left out (`more_accounts`, its last key). Each instance's rows depend on its own members and
    facts alone, so a pattern run a partition at a time gives the same (graph/anchored.py).
    O(M log M) for M member rows.
    """
    if members.is_empty():
        return empty_hits()
    members = members.unique(["instance", "account_id"], keep="first", maintain_order=True)
    listed = pl.int_range(pl.len()).over("instance", "role") < MAX_MEMBERS_PER_ROLE
    counts = members.group_by("instance").agg(pl.len().alias("_n"), listed.sum().alias("_listed"))
    more = counts.filter(pl.col("_n") > pl.col("_listed")).select(
        "instance", (pl.col("_n") - pl.col("_listed")).alias("_more")
    )
    members = members.filter(listed)
    accounts = members.group_by("instance", maintain_order=True).agg(
        pl.col("account_id").alias("accounts")
    )
    facts = facts.join(accounts, on="instance", how="inner")
    extra = [c for c in facts.columns if c not in ("instance", "txn_ids", "accounts")]
    iso = [
        pl.col(c).dt.to_string(ISO) for c in extra if facts.schema[c] == pl.Datetime("us", "UTC")
    ]
    facts = facts.with_columns(iso).select(
        "instance",
        pl.col("txn_ids").list.head(MAX_TXNS_PER_INSTANCE),
        pl.struct("accounts", *extra).struct.json_encode().alias("evidence"),
    )
    if not more.is_empty():  # the last key of an instance's evidence, of that instance alone
        text = pl.col("evidence").str.strip_suffix("}") + ',"more_accounts":'
        facts = (
            facts.join(more, on="instance", how="left", maintain_order="left")
            .with_columns(
                pl.when(pl.col("_more").is_not_null())
                .then(text + pl.col("_more").cast(pl.String) + "}")
                .otherwise(pl.col("evidence"))
                .alias("evidence")
            )
            .drop("_more")
        )
    return (
        members.join(facts, on="instance", how="inner", maintain_order="left")
        .select(list(HIT_SCHEMA.names()))
        .cast(HIT_SCHEMA)
        .sort("instance", maintain_order=True)
    )


def txn_lists(legs: pl.DataFrame) -> pl.DataFrame:
    """instance -> its distinct txn ids in time order, from rows of (instance, txn_id, ts)."""
    return (
        legs.unique(["instance", "txn_id"])
        .sort("ts", "txn_id")
        .group_by("instance", maintain_order=True)
        .agg(pl.col("txn_id").alias("txn_ids"))
    )


def span_facts(ts: str = "ts", amount: str | None = None) -> list[pl.Expr]:
    """Aggregations every instance reports: first/last time and duration (and a rounded sum)."""
    out = [
        pl.col(ts).min().alias("first_ts"),
        pl.col(ts).max().alias("last_ts"),
        ((pl.col(ts).max() - pl.col(ts).min()).dt.total_seconds() / 3600)
        .round(2)
        .alias("duration_hours"),
    ]
    if amount is not None:
        out.append(pl.col(amount).sum().round(2).alias("total_amount"))
    return out


def instance_by_first_txn(name: str, by: str) -> pl.Expr:
    """`name:<id of the group's first transaction>` (by time, then id): an instance name that is
    the same in every run over the same transactions."""
    return (pl.lit(f"{name}:") + pl.col("txn_id").sort_by("ts", "txn_id").first().over(by)).alias(
        "instance"
    )
