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

from flows87.pipeline.graph.anchored import Anchored, Partition, by_role
from flows87.pipeline.graph.common import (
    IDENTIFIERS,
    ONE_US,
    GraphContext,
    components,
    covering,
    days,
    empty_hits,
    finish,
    party_of,
    span_facts,
    transfers,
    txn_lists,
)

STRONG = ("phone", "email", "device_id")
"""Identifiers one person rarely shares with strangers; an address is shared by every flatmate."""


def _normal(value: pl.Expr) -> pl.Expr:
    return value.str.strip_chars().str.to_lowercase()


def identifier_pairs(ctx: GraphContext) -> pl.DataFrame:
    """account_id, party, identifier, value: each account's identifiers, distinct."""
    return ctx.memo("identifier_pairs", lambda: _pairs_of(ctx.accounts, ctx.transactions.lazy()))


def _pairs_of(accounts: pl.DataFrame, tx: pl.LazyFrame) -> pl.DataFrame:
    """`identifier_pairs` of the accounts and of the devices that made the transactions `tx`
    (the context's, or every transaction of the run when a partition is primed)."""
    acc = party_of(accounts).join(accounts.select("account_id", *IDENTIFIERS), on="account_id")
    # one identifier at a time (rows of two never coincide): the peak is the largest one's
    # rows, not all of them at once (2.4 GB at 20M transactions)
    pieces = []
    for c in IDENTIFIERS:
        rows = acc.lazy().select("account_id", "party", pl.col(c).alias("value"))
        if c == "device_id":  # and the devices that made each account's transactions
            used = (
                tx.filter(pl.col("device_id").is_not_null())
                .select(
                    pl.col("src_account").alias("account_id"),
                    pl.col("device_id").alias("value"),
                )
                .unique()
                .join(acc.lazy().select("account_id", "party"), on="account_id")
                .select("account_id", "party", "value")
            )
            rows = pl.concat([rows, used])
        pieces.append(
            rows.with_columns(_normal(pl.col("value")))
            .filter(pl.col("value").is_not_null() & (pl.col("value") != ""))
            .unique()
            .select("account_id", "party", pl.lit(c).alias("identifier"), "value")
            .collect(engine="streaming")
        )
    return pl.concat(pieces)


def devices_used(ctx: GraphContext) -> pl.DataFrame:
    """txn_id, ts, account_id, node: the transactions made from a device that two parties or
    more hold or use (node "device_id:<value>"), all a pattern reads of them."""
    return ctx.memo(
        "identifier_pairs:devices_used",
        lambda: _devices_used_of(ctx.transactions.lazy(), identifier_pairs(ctx)),
    )


def _devices_used_of(tx: pl.LazyFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """`devices_used` of the transactions `tx`, given every account's identifiers."""
    shared = (
        pairs.lazy()
        .filter(pl.col("identifier") == "device_id")
        .group_by("value")
        .agg(pl.col("party").n_unique().alias("n"))
        .filter(pl.col("n") >= 2)
        .select((pl.lit("device_id:") + pl.col("value")).alias("node"))
    )
    return (
        tx.filter(pl.col("device_id").is_not_null())
        .select(
            "txn_id",
            pl.col("ts").cast(pl.Datetime("us", "UTC")),
            pl.col("src_account").alias("account_id"),
            (pl.lit("device_id:") + _normal(pl.col("device_id"))).alias("node"),
        )
        .join(shared, on="node", how="semi")
        .collect(engine="streaming")
    )


def _device_txns(ctx: GraphContext, tagged: pl.DataFrame) -> pl.DataFrame:
    """instance, txn_id, ts: transactions made from a shared device by a party of the instance."""
    devices = tagged.filter(pl.col("node").str.starts_with("device_id:"))
    return (
        devices_used(ctx)
        .join(devices.select("node").unique(), on="node", how="semi")
        .join(party_of(ctx.accounts), on="account_id")
        .join(devices.select("party", "node", "instance"), on=["party", "node"])
        .select("instance", "txn_id", "ts")
    )


def surname() -> pl.Expr:
    """The last word of the holder's name, lower-cased: enough to tell relatives from strangers."""
    return pl.col("name").str.strip_chars().str.to_lowercase().str.split(" ").list.last()


def _linked(ctx: GraphContext, max_group: float) -> pl.DataFrame:
    """party, identifier, node, group: shared values and the group (component) they fall in.

    A component with more than `max_group` parties is a mass of coincidental links rather than
    one ring, so inside it each shared value is a group of its own.
    """
    n = pl.len().over("node")
    links = (
        identifier_pairs(ctx)
        .lazy()
        .select("party", "identifier", (pl.col("identifier") + ":" + pl.col("value")).alias("node"))
        .unique()
        .filter(n >= 2, n <= max_group)
        .collect()
    )
    if links.is_empty():
        return links.with_columns(pl.lit(None, pl.String).alias("group"))
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
    return links.join(comp, on="party").select(
        "party",
        "identifier",
        "node",
        pl.when(size <= max_group)
        .then(pl.format("c{}", "component"))
        .otherwise(pl.lit("v:") + pl.col("node"))
        .alias("group"),
    )


def _enough(p: dict[str, float], named: bool) -> pl.Expr:
    """Enough parties, and of enough surnames when the data has names."""
    return (pl.col("parties") >= p["min_parties"]) & (
        (pl.col("surnames") >= p["min_surnames"]) if named else pl.lit(True)
    )


def _strangers(tagged: pl.DataFrame, p: dict[str, float], named: bool) -> pl.DataFrame:
    """The links between strangers, of the parties that hold a telling one; adds `strong`.

    A value links strangers when its holders bear two surnames or more (a family phone does not;
    with `min_surnames` 1 every value does). A party stays when it holds such a link of a strong
    kind, or links of `min_kinds` kinds: a flatmate, linked by the address alone, and a ring
    member's relatives, linked by the address and a family phone, drop out. A strong value that
    alone ties enough parties of enough surnames is marked `strong`.
    """
    per_value = tagged.group_by("group", "node", "identifier").agg(
        pl.col("party").n_unique().alias("parties"),
        pl.col("surname").drop_nulls().n_unique().alias("surnames"),
    )
    unrelated = pl.col("surnames") >= min(2, p["min_surnames"]) if named else pl.lit(True)
    per_value = per_value.select(
        "group",
        "node",
        unrelated.alias("unrelated"),
        (pl.col("identifier").is_in(STRONG) & _enough(p, named)).alias("strong"),
    )
    tagged = tagged.join(per_value, on=["group", "node"]).filter("unrelated")
    telling = (
        tagged.group_by("group", "party")
        .agg(
            pl.col("identifier").n_unique().alias("kinds"),
            pl.col("identifier").is_in(STRONG).any().alias("strong_kind"),
        )
        .filter((pl.col("kinds") >= p["min_kinds"]) | pl.col("strong_kind"))
    )
    return (
        tagged.join(telling, on=["group", "party"], how="semi")
        .filter(pl.len().over("group", "node") >= 2)
        .drop("unrelated")
    )


def shared_identifiers(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Groups of unrelated parties (several surnames) linked through shared identifiers.

    Flatmates share an address and nothing else, so a group counts only when the links between
    its strangers span `min_kinds` kinds of identifier (address, phone, e-mail, device), or when
    one strong value (a phone, e-mail or device) alone ties `min_parties` parties of
    `min_surnames` surnames: one controller's phone on several strangers' accounts (FinCEN 2020).

    Cost: O(I log I) for I (party, identifier) pairs: values shared by more than `max_group`
    parties are dropped first, components are labelled by scipy (linear), and a component
    larger than `max_group` falls apart into its shared values.
    """
    tagged = _linked(ctx, p["max_group"])
    if tagged.is_empty():
        return empty_hits()
    parties = party_of(ctx.accounts).join(
        ctx.accounts.select("account_id", "name"), on="account_id"
    )
    named = parties.select(pl.col("name").is_not_null().any()).item()
    per_party = parties.group_by("party").agg(surname().drop_nulls().first().alias("surname"))
    tagged = _strangers(tagged.join(per_party, on="party", how="left"), p, named)
    groups = (
        tagged.group_by("group")
        .agg(
            pl.col("party").n_unique().alias("parties"),
            pl.col("surname").drop_nulls().n_unique().alias("surnames"),
            pl.col("party").min().alias("first_party"),
            pl.col("node").unique().sort().alias("identifiers"),
            pl.col("identifier").unique().sort().alias("kinds"),
            pl.col("node").filter(pl.col("strong")).unique().sort().alias("strong"),
        )
        .filter(
            _enough(p, named),
            (pl.col("kinds").list.len() >= p["min_kinds"]) | (pl.col("strong").list.len() > 0),
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
            "kinds",
            pl.col("strong").alias("strong_identifiers"),
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
    """Accounts of two or more parties opened within days of each other, sharing one value.

    Cost: O(A log A) for A (account, identifier) pairs: windows are counted with
    `common.covering`. A value shared by thousands of accounts opened within the window (every
    account opened in the period) is one instance listing at most MAX_MEMBERS_PER_ROLE of them.
    """
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
    # windows (t - w, t] ending at each opening, counted with `covering` (linear; a rolling
    # count is quadratic when thousands of accounts share a value and open within the window)
    group = ["identifier", "value"]
    anchors = rows.select(*group, pl.col("opened_at").alias("anchor")).unique()
    span = (pl.col("opened_at"), pl.col("opened_at") + window - ONE_US)
    best = (
        covering(rows, group, "account_id", anchors, *span)
        .join(covering(rows, group, "party", anchors, *span, name="np"), on=[*group, "anchor"])
        .filter(pl.col("n") >= k, pl.col("np") >= 2)
        .sort([*group, "n", "anchor"], descending=[False, False, True, False])
        .unique(group, keep="first", maintain_order=True)
        .select(*group, "anchor")
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


def common_payee(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Unrelated parties sharing one identifier value who each pay the same outside account,
    again and again within one window (FinCEN 2020: strangers sharing an address or phone, all
    sending funds to one beneficiary; FATF 2018: victims' earnings or debts paid to one person).

    Unlike `shared_identifiers`, one shared address suffices, because the shared value is only
    half the evidence: the other half is what the sharers do together. Flatmates pay a landlord
    once a month; a group paying one third party repeatedly within weeks is what counts. Windows
    start at each payment; one instance per payee (its busiest window and shared value).

    Cost: O(P log P) for P (payment, shared value) rows: windows are counted with
    `common.covering`; values shared by more than `max_group` parties are left out.
    """
    # values counted by (identifier, value), the node's text made for the shared ones only:
    # the text of every account's values took 1.4 GB at 20M transactions
    pairs = identifier_pairs(ctx).select("party", "identifier", "value")
    shared = (
        pairs.group_by("identifier", "value")
        .agg(pl.col("party").n_unique().alias("n"))
        .filter(pl.col("n") >= 2, pl.col("n") <= p["max_group"])
    )
    links = (
        pairs.join(shared.select("identifier", "value"), on=["identifier", "value"], how="semi")
        .select("party", (pl.col("identifier") + ":" + pl.col("value")).alias("node"))
        .unique()
    )
    if links.is_empty():
        return empty_hits()
    parties = party_of(ctx.accounts).join(
        ctx.accounts.select("account_id", "name"), on="account_id"
    )
    named = parties.select(pl.col("name").is_not_null().any()).item()
    owner = parties.select(pl.col("account_id").alias("src"), "party", surname().alias("surname"))
    window = days(p["window_days"])
    # only payments of parties holding a shared value, before anything is joined to them
    payers = party_of(ctx.accounts).join(links.select("party").unique(), on="party", how="semi")
    paid = (
        transfers(ctx)
        .filter(pl.col("channel") != "card")
        .select("txn_id", "ts", "src", "dst", "amt")  # what is read below
        .join(payers.select(pl.col("account_id").alias("src")), on="src", how="semi")
        .join(owner, on="src")
        .join(links, on="party")
    )
    # The payee must stand outside the group (flatmates paying the head tenant do not count).
    payee_party = party_of(ctx.accounts).select(pl.col("account_id").alias("dst"), "party")
    inside = links.join(payee_party, on="party").select("node", "dst")
    paid = paid.join(inside, on=["node", "dst"], how="anti")
    # Only a (value, payee) pair with enough payers and payments overall can hold a window that
    # has them: dropping the others first keeps the window join small.
    enough = paid.group_by("node", "dst").agg(
        pl.col("party").n_unique().alias("payers"),
        pl.len().alias("n"),
        pl.col("surname").drop_nulls().n_unique().alias("surnames"),
    )
    enough = enough.filter(
        pl.col("payers") >= p["min_payers"],
        pl.col("n") >= p["min_payers"] * p["min_per_payer"],
        (pl.col("surnames") >= p["min_surnames"]) if named else pl.lit(True),
    )
    paid = paid.join(enough.select("node", "dst"), on=["node", "dst"], how="semi")
    # Windows [t, t + w) start at each payment; a payment at s falls in those with t in
    # (s - w, s] (`covering`: linear, where pairing each window start with every payment of
    # the payee is quadratic for a payee paid daily). Keep, per payee, the window and shared
    # value with most payers.
    group = ["node", "dst"]
    anchors = paid.select(*group, pl.col("ts").alias("anchor")).unique()
    span = (pl.col("ts") - window + ONE_US, pl.col("ts"))
    per = (
        covering(paid, group, "party", anchors, *span, name="payers")
        .join(
            covering(paid.drop_nulls("surname"), group, "surname", anchors, *span, name="surnames"),
            on=[*group, "anchor"],
        )
        .join(covering(paid, group, None, anchors, *span, name="payments"), on=[*group, "anchor"])
        .with_columns(
            pl.col("surnames").fill_null(0),
            (pl.col("payments") / pl.col("payers")).alias("per_payer"),
        )
        .filter(
            pl.col("payers") >= p["min_payers"],
            (pl.col("surnames") >= p["min_surnames"]) if named else pl.lit(True),
            pl.col("per_payer") >= p["min_per_payer"],
        )
        .sort(["dst", "payers", "anchor", "node"], descending=[False, True, False, False])
        .unique(["dst"], keep="first", maintain_order=True)
    )
    if per.is_empty():
        return empty_hits()
    inside_window = paid.join(per.select(*group, "anchor"), on=group).filter(
        pl.col("ts") >= pl.col("anchor"), pl.col("ts") < pl.col("anchor") + window
    )
    legs = inside_window.with_columns((pl.lit("common_payee:") + pl.col("dst")).alias("instance"))
    facts = txn_lists(legs).join(
        legs.group_by("instance").agg(
            pl.col("dst").first().alias("payee"),
            pl.col("node").first().alias("shared_identifier"),
            pl.col("party").n_unique().alias("n_payers"),
            pl.len().alias("n_transfers"),
            *span_facts(amount="amt"),
        ),
        on="instance",
    )
    members = pl.concat(
        [
            legs.sort("ts", "txn_id").select(
                "instance", pl.col("src").alias("account_id"), pl.lit("payer").alias("role")
            ),
            legs.select(
                "instance", pl.col("dst").alias("account_id"), pl.lit("payee").alias("role")
            ),
        ]
    )
    return finish(members, facts)


def whole_identifiers(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """A `Prime`: every account's identifiers, with the devices of every transaction of the run
    (a partition's transactions hold only some of them)."""
    ctx.memo("identifier_pairs", lambda: _pairs_of(ctx.accounts, tx))


def whole_identifiers_and_devices(
    tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]
) -> None:
    """A `Prime`: `whole_identifiers`, and the transactions of every shared device of the run
    (`devices_used`, the evidence of a group sharing one)."""
    whole_identifiers(tx, ctx, values)
    ctx.memo(
        "identifier_pairs:devices_used",
        lambda: _devices_used_of(tx, identifier_pairs(ctx)),
    )


def by_instance(hits: pl.DataFrame) -> pl.DataFrame:
    """Instances anchored at themselves: a group of parties, or a shared value, whose name says
    which (the hash of the name chooses the partition)."""
    return hits.select("instance", pl.col("instance").alias("key")).unique(maintain_order=True)


def no_transactions(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """No transaction: all the pattern reads of them is primed from the whole run."""
    return pl.lit(False)


def payments_in(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """Reach of common_payee: the payments (card purchases left out) to the partition's
    accounts."""
    return p.has("dst_account") & (pl.col("channel") != "card").fill_null(True)


ANCHORED = {
    "shared_identifiers": Anchored(
        by_instance, no_transactions, whole_identifiers_and_devices, once=True
    ),
    "onboarding_burst": Anchored(by_instance, no_transactions, whole_identifiers, once=True),
    "common_payee": Anchored(by_role("payee"), payments_in, whole_identifiers),
}
"""The identifier graph (accounts sharing an address, phone, e-mail or device) is the accounts
table and two narrow projections of the transactions (the devices each account used, and the
transactions from shared devices), primed from the whole run (0.4M and 77k rows at 5M
transactions, read streaming). Groups and bursts read nothing else: the first partition finds them
all (components of the identifier graph, and bursts deduplicated across values, need all of it)
and the others none (`Anchored.once`). A common payee's instance is the payee's: it reads the
payments the payee received."""
