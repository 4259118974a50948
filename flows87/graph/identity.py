"""Identity patterns: unrelated parties tied together by shared identifiers, and bursts of new
accounts sharing one.

Identifiers are the holder's address, phone, e-mail and login device, plus the devices that
initiated each account's transactions. Values are compared trimmed and lower-cased. A value
shared by very many parties (a shelter, a company's head office, a bank's own kiosk) says
nothing about any of them, so it is left out. Components are labelled with scipy's sparse
routine (common.components): coincidental sharing can link a large mass of parties.
"""

from __future__ import annotations

import polars as pl

from flows87.graph.common import (
    IDENTIFIERS,
    GraphContext,
    components,
    days,
    empty_hits,
    finish,
    party_of,
    txn_lists,
)


def _normal(value: pl.Expr) -> pl.Expr:
    return value.str.strip_chars().str.to_lowercase()


def identifier_pairs(ctx: GraphContext) -> pl.DataFrame:
    """account_id, party, identifier, value: each account's identifiers, distinct."""

    def make() -> pl.DataFrame:
        acc = (
            party_of(ctx.accounts)
            .join(ctx.accounts.select("account_id", *IDENTIFIERS), on="account_id")
            .lazy()
        )
        attrs = [
            acc.select(
                "account_id", "party", pl.lit(c).alias("identifier"), pl.col(c).alias("value")
            )
            for c in IDENTIFIERS
        ]
        used = (
            ctx.transactions.lazy()
            .filter(pl.col("device_id").is_not_null())
            .select(pl.col("src_account").alias("account_id"), pl.col("device_id").alias("value"))
            .unique()
            .join(acc.select("account_id", "party"), on="account_id")
            .select("account_id", "party", pl.lit("device_id").alias("identifier"), "value")
        )
        return (
            pl.concat([*attrs, used])
            .with_columns(_normal(pl.col("value")))
            .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
            .unique()
            .collect()
        )

    return ctx.memo("identifier_pairs", make)


def _device_txns(ctx: GraphContext, tagged: pl.DataFrame) -> pl.DataFrame:
    """instance, txn_id, ts: transactions made from a shared device by a party of the instance."""
    devices = tagged.filter(pl.col("node").str.starts_with("device_id:"))
    return (
        ctx.transactions.filter(pl.col("device_id").is_not_null())
        .select(
            "txn_id",
            "ts",
            pl.col("src_account").alias("account_id"),
            (pl.lit("device_id:") + _normal(pl.col("device_id"))).alias("node"),
        )
        .join(devices.select("node").unique(), on="node", how="semi")
        .join(party_of(ctx.accounts), on="account_id")
        .join(devices.select("party", "node", "instance"), on=["party", "node"])
        .select("instance", "txn_id", "ts")
    )


def _surname() -> pl.Expr:
    return pl.col("name").str.strip_chars().str.to_lowercase().str.split(" ").list.last()


def shared_identifiers(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Groups of parties linked through shared identifiers, with several distinct surnames.

    A group is a connected component of the party--identifier graph. A component with more than
    `max_group` parties is a mass of coincidental links rather than one ring, so inside it each
    shared value is judged on its own.
    """
    n = pl.len().over("node")
    links = (
        identifier_pairs(ctx)
        .lazy()
        .select("party", (pl.col("identifier") + ":" + pl.col("value")).alias("node"))
        .unique()
        .filter(n >= 2, n <= p["max_group"])
        .collect()
    )
    if links.is_empty():
        return empty_hits()
    comp = (
        components(
            links.select(
                (pl.lit("p:") + pl.col("party")).alias("u"),
                (pl.lit("i:") + pl.col("node")).alias("v"),
            )
        )
        .filter(pl.col("node").str.starts_with("p:"))
        .select(pl.col("node").str.strip_prefix("p:").alias("party"), "component")
    )
    size = pl.col("party").n_unique().over("component")
    tagged = links.join(comp, on="party").with_columns(
        pl.when(size <= p["max_group"])
        .then(pl.format("c{}", "component"))
        .otherwise(pl.lit("v:") + pl.col("node"))
        .alias("group")
    )
    parties = party_of(ctx.accounts).join(
        ctx.accounts.select("account_id", "name"), on="account_id"
    )
    named = parties.select(pl.col("name").is_not_null().any()).item()
    per_party = parties.group_by("party").agg(_surname().drop_nulls().first().alias("surname"))
    groups = (
        tagged.join(per_party, on="party", how="left")
        .group_by("group")
        .agg(
            pl.col("party").n_unique().alias("parties"),
            pl.col("surname").drop_nulls().n_unique().alias("surnames"),
            pl.col("party").min().alias("first_party"),
            pl.col("node").unique().sort().alias("identifiers"),
        )
        .filter(
            pl.col("parties") >= p["min_parties"],
            (pl.col("surnames") >= p["min_surnames"]) if named else pl.lit(True),
        )
        .with_columns(
            pl.when(pl.col("group").str.starts_with("v:"))
            .then(pl.lit("shared_identifiers:") + pl.col("group").str.strip_prefix("v:"))
            .otherwise(pl.lit("shared_identifiers:") + pl.col("first_party"))
            .alias("instance")
        )
    )
    if groups.is_empty():
        return empty_hits()
    tagged = tagged.join(groups.select("group", "instance"), on="group")
    facts = (
        groups.select(
            "instance",
            pl.col("parties").alias("n_parties"),
            pl.when(pl.lit(named)).then(pl.col("surnames")).alias("n_surnames"),
            "identifiers",
        )
        .join(txn_lists(_device_txns(ctx, tagged)), on="instance", how="left")
        .with_columns(pl.col("txn_ids").fill_null([]))
    )
    members = (
        party_of(ctx.accounts)
        .join(tagged.select("party", "instance").unique(), on="party")
        .sort("instance", "account_id")
        .select("instance", "account_id", pl.lit("member").alias("role"))
    )
    return finish(members, facts)


def onboarding_burst(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Accounts of two or more parties opened within days of each other, sharing one value."""
    window, k = days(p["window_days"]), int(p["min_accounts"])
    opened = ctx.accounts.select("account_id", "opened_at").filter(
        pl.col("opened_at").is_not_null()
    )
    rows = identifier_pairs(ctx).join(opened, on="account_id")
    wide = rows.group_by("identifier", "value").agg(pl.col("account_id").n_unique().alias("n"))
    rows = rows.join(wide.filter(pl.col("n") >= k), on=["identifier", "value"], how="semi").sort(
        "identifier", "value", "opened_at", "account_id"
    )
    if rows.is_empty():
        return empty_hits()
    best = (
        rows.rolling(index_column="opened_at", period=window, group_by=["identifier", "value"])
        .agg(pl.col("account_id").n_unique().alias("n"), pl.col("party").n_unique().alias("np"))
        .filter(pl.col("n") >= k, pl.col("np") >= 2)
        .sort(["identifier", "value", "n", "opened_at"], descending=[False, False, True, False])
        .unique(["identifier", "value"], keep="first", maintain_order=True)
        .select("identifier", "value", pl.col("opened_at").alias("anchor"))
    )
    got = rows.join(best, on=["identifier", "value"]).filter(
        pl.col("opened_at") > pl.col("anchor") - window, pl.col("opened_at") <= pl.col("anchor")
    )
    if got.is_empty():
        return empty_hits()
    facts = (
        got.group_by("identifier", "value")
        .agg(
            pl.col("account_id").sort().alias("set"),
            pl.col("account_id").n_unique().alias("n_accounts"),
            pl.col("party").n_unique().alias("n_parties"),
            pl.col("opened_at").min().alias("first_opened"),
            pl.col("opened_at").max().alias("last_opened"),
        )
        .sort("identifier", "value")
        # The same accounts may share an address and a phone: report the group once.
        .unique("set", keep="first", maintain_order=True)
        .with_columns(
            (pl.lit("onboarding_burst:") + pl.col("identifier") + ":" + pl.col("value")).alias(
                "instance"
            ),
            ((pl.col("last_opened") - pl.col("first_opened")).dt.total_seconds() / 86_400)
            .round(2)
            .alias("span_days"),
            pl.lit(p["window_days"]).alias("window_days"),
            pl.lit([], dtype=pl.List(pl.String)).alias("txn_ids"),
        )
    )
    members = (
        got.join(facts.select("identifier", "value", "instance"), on=["identifier", "value"])
        .sort("instance", "opened_at", "account_id")
        .select("instance", "account_id", pl.lit("member").alias("role"))
    )
    return finish(members, facts.drop("set"))
