"""Mule patterns: dense many-to-many transfers among new accounts, and the same few people's
cards emptied together at one ATM, again and again.

Mule groups are found on the small graph of transfers between young accounts: accounts with too
few young counterparties are peeled off in polars (as for a k-core), the remaining pieces are
split into connected components and, when a component is too loose, into Louvain communities,
and each piece is kept when its sender-to-receiver density is high enough.

Card groups are found from pairs of accounts that withdraw at one location within minutes of
each other on separate occasions: strangers queueing at a busy ATM rarely meet twice, a
controller's victims' cards always do.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta

import networkx as nx
import polars as pl

from flows87.pipeline.graph.analysis import louvain
from flows87.pipeline.graph.anchored import Anchored, Partition
from flows87.pipeline.graph.common import (
    ABROAD,
    GraphContext,
    components,
    covering,
    days,
    empty_hits,
    ends_abroad,
    finish,
    has_data,
    instance_by_first_txn,
    party_of,
    span_facts,
    transfers,
    txn_lists,
)
from flows87.pipeline.graph.context import TRANSFER

MAX_PEEL_ROUNDS = 20
MAX_LOUVAIN_NODES = 5_000
"""Loose young components larger than this are not searched for dense rings (too slow)."""

MAX_LOUVAIN_EDGES_TOTAL = 100_000
"""At most this many edges in all are split with Louvain (networkx, some 30 us an edge), the
smallest loose components first: everyone young and paying everyone (a simulator's data, or a
bank's new product) must not turn into minutes of Python."""

log = logging.getLogger(__name__)


def _young_transfers(ctx: GraphContext, max_age: timedelta) -> pl.DataFrame:
    """Transfers between two accounts both at most `max_age` old at the time."""
    e = transfers(ctx)
    if e.is_empty():
        return e
    first = e.get_column("ts").min()
    # Only accounts opened after (first transfer - max_age) are ever young in this data.
    opened = ctx.accounts.select("account_id", "opened_at").filter(
        pl.col("opened_at") >= pl.lit(first) - max_age
    )
    return (
        e.lazy()
        .join(opened.lazy().rename({"account_id": "src", "opened_at": "src_opened"}), on="src")
        .join(opened.lazy().rename({"account_id": "dst", "opened_at": "dst_opened"}), on="dst")
        .filter(
            pl.col("ts") - pl.col("src_opened") <= max_age,
            pl.col("ts") - pl.col("dst_opened") <= max_age,
        )
        .collect()
    )


def _peel(pairs: pl.DataFrame, need_out: int, need_in: int) -> pl.DataFrame:
    """Drop senders with fewer than `need_out` receivers and receivers with fewer than `need_in`
    senders, until nothing changes."""
    for _ in range(MAX_PEEL_ROUNDS):
        outs = pairs.group_by("src").len().filter(pl.col("len") >= need_out)
        ins = pairs.group_by("dst").len().filter(pl.col("len") >= need_in)
        kept = pairs.join(outs, on="src", how="semi").join(ins, on="dst", how="semi")
        if kept.height == pairs.height:
            break
        pairs = kept
    return pairs


def _louvain(edges: pl.DataFrame) -> list[list[str]]:
    """Louvain communities of the undirected graph of `edges` (src, dst), each sorted, in order
    of their smallest account; independent of the row order of `edges` (see `sorted_graph`)."""
    parts = louvain(nx.Graph(edges.select("src", "dst").iter_rows()), seed=0)
    return sorted((sorted(c) for c in parts), key=lambda c: c[0])


def _label(pairs: pl.DataFrame, groups: list[list[str]], prefix: str) -> pl.DataFrame:
    """Tag each pair whose sender lies in one of `groups` (and its receiver in the same group)."""
    labels = pl.DataFrame(
        {
            "node": [n for g in groups for n in g],
            "group": [f"{prefix}{i}" for i, g in enumerate(groups) for _ in g],
        },
        schema={"node": pl.String, "group": pl.String},
    )
    return (
        pairs.join(labels.rename({"node": "src"}), on="src")
        .join(labels.rename({"node": "dst", "group": "g2"}), on="dst")
        .filter(pl.col("group") == pl.col("g2"))
        .drop("g2")
    )


def _density(labelled: pl.DataFrame) -> pl.DataFrame:
    """group, senders, receivers, edges, density (edges / possible sender->receiver pairs)."""
    both = (
        labelled.select("group", pl.col("src").alias("n"))
        .unique()
        .join(labelled.select("group", pl.col("dst").alias("n")).unique(), on=["group", "n"])
        .group_by("group")
        .len()
        .rename({"len": "both"})
    )
    return (
        labelled.group_by("group")
        .agg(
            pl.col("src").n_unique().alias("senders"),
            pl.col("dst").n_unique().alias("receivers"),
            pl.len().alias("edges"),
        )
        .join(both, on="group", how="left")
        .with_columns(pl.col("both").fill_null(0))
        .with_columns(
            (pl.col("edges") / (pl.col("senders") * pl.col("receivers") - pl.col("both"))).alias(
                "density"
            )
        )
    )


def mule_network(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Dense many-to-many transfers among accounts younger than `max_age_days` at the time.

    Cost: O(E log E) for E transfers (young pairs, peeling, components, densities are joins and
    counts), plus Louvain (networkx) on loose components of at most `max_split_edges` edges,
    MAX_LOUVAIN_EDGES_TOTAL edges in all. When every account is young (all opened within the
    period), the young graph is the whole graph: still linear, and the Louvain work is capped.

    A partition's context primed with the whole graph's young rows (`_prime_young`) is searched
    on those rows alone: what the pattern reads of the whole graph.
    """
    if not has_data(ctx.accounts, "opened_at"):
        return empty_hits()
    primed = ctx.memo(_young_key(p), lambda: pl.DataFrame())
    if primed.width:
        ctx = GraphContext(primed, ctx.accounts, ctx.features, ctx.signals, ctx.columns)
    return _mule_network(ctx, p)


def _mule_network(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """`mule_network` on the transfers of `ctx`."""
    young = _young_transfers(ctx, days(p["max_age_days"]))
    s_min, r_min, dens = int(p["min_senders"]), int(p["min_receivers"]), float(p["min_density"])
    pairs = _peel(
        young.select("src", "dst").unique(),
        max(1, math.ceil(r_min * dens)),
        max(1, math.ceil(s_min * dens)),
    )
    if pairs.is_empty():
        return empty_hits()
    comp = components(pairs.rename({"src": "u", "dst": "v"}))
    labelled = pairs.join(comp.rename({"node": "src"}), on="src").select(
        "src", "dst", pl.format("c{}", "component").alias("group")
    )
    stats = _density(labelled)

    def passes(s: pl.DataFrame) -> pl.DataFrame:
        return s.filter(
            pl.col("senders") >= s_min, pl.col("receivers") >= r_min, pl.col("density") >= dens
        )

    good = passes(stats).select("group")
    frames = [labelled.join(good, on="group", how="semi")]
    # A loose component may still hold a dense ring: split it into Louvain communities.
    nodes = pl.col("senders") + pl.col("receivers") - pl.col("both")
    loose = stats.join(good, on="group", how="anti").filter(nodes > s_min + r_min)
    splittable = (nodes <= MAX_LOUVAIN_NODES) & (pl.col("edges") <= p["max_split_edges"])
    chosen = (
        loose.filter(splittable)
        .sort("edges", "group")
        .filter(pl.col("edges").cum_sum() <= MAX_LOUVAIN_EDGES_TOTAL)
    )
    if chosen.height < loose.height:
        log.warning(
            "mule_network: %d loose young components not split (over %d accounts, %d edges, "
            "or %d edges in all)",
            loose.height - chosen.height,
            MAX_LOUVAIN_NODES,
            int(p["max_split_edges"]),
            MAX_LOUVAIN_EDGES_TOTAL,
        )
    # one pass over the edges for all components (a filter per component is quadratic)
    pieces = labelled.join(chosen.select("group"), on="group", how="semi").partition_by(
        "group", as_dict=True
    )
    for i, group in enumerate(sorted(chosen["group"])):
        edges = pieces[(group,)].drop("group").sort("src", "dst")
        parts = _louvain(edges)
        split = _label(edges, parts, f"l{i}.")
        frames.append(split.join(passes(_density(split)).select("group"), on="group", how="semi"))
    kept = pl.concat(frames)
    if kept.is_empty():
        return empty_hits()
    txns = young.join(kept, on=["src", "dst"])
    txns = txns.with_columns(instance_by_first_txn("mule_network", "group"))
    # A ring that moved next to nothing (young friends splitting a bill) is not worth a case.
    big = txns.group_by("instance").agg(pl.col("amt").sum().alias("moved"))
    txns = txns.join(
        big.filter(pl.col("moved") >= p["min_amount"]).select("instance"), on="instance", how="semi"
    )
    if txns.is_empty():
        return empty_hits()
    stats = pl.concat([_density(f) for f in frames if not f.is_empty()]).join(
        txns.select("group", "instance").unique(), on="group"
    )
    ring = txns.select("instance", pl.col("src").alias("account_id")).vstack(
        txns.select("instance", pl.col("dst").alias("account_id"))
    )
    spans = txns.group_by("instance").agg(
        pl.col("ts").min().alias("first"),
        pl.col("ts").max().alias("last"),
        pl.col("amt").sum().alias("amount"),
    )
    # The ring's money from abroad just before and abroad just after: its other ends.
    ends = pl.concat(
        [
            ends_abroad(
                ctx, ring.unique(), spans, days(p["flow_days"]), p["min_abroad_share"], outward=o
            )
            for o in (False, True)
        ]
    )
    facts = (
        txn_lists(
            pl.concat([txns.select("instance", "txn_id", "ts"), ends.drop("account_id", "role")])
        )
        .join(
            stats.select(
                "instance",
                pl.col("senders").alias("n_senders"),
                pl.col("receivers").alias("n_receivers"),
                pl.col("edges").alias("n_edges"),
                pl.col("density").round(4),
            ),
            on="instance",
        )
        .join(
            txns.group_by("instance").agg(pl.len().alias("n_transfers"), *span_facts(amount="amt")),
            on="instance",
        )
    )
    sends = txns.select(
        "instance", pl.col("src").alias("account_id"), pl.lit(True).alias("s")
    ).unique()
    gets = txns.select(
        "instance", pl.col("dst").alias("account_id"), pl.lit(True).alias("r")
    ).unique()
    members = (
        sends.join(gets, on=["instance", "account_id"], how="full", coalesce=True)
        .with_columns(
            pl.when(pl.col("s") & pl.col("r"))
            .then(pl.lit("mule"))
            .when(pl.col("s"))
            .then(pl.lit("sender"))
            .otherwise(pl.lit("receiver"))
            .alias("role")
        )
        .sort("instance", pl.col("r").is_not_null(), "account_id")
        .select("instance", "account_id", "role")
    )
    return finish(pl.concat([members, ends.select("instance", "account_id", "role")]), facts)


def _withdrawals(ctx: GraphContext) -> pl.DataFrame:
    """Cash withdrawals at a known location, with the party of the account."""
    return (
        ctx.transactions.filter(
            pl.col("channel") == "cash_withdrawal", pl.col("location_id").is_not_null()
        )
        .select(
            "txn_id", "ts", pl.col("src_account").alias("account_id"), "location_id", "amount_base"
        )
        .join(party_of(ctx.accounts), on="account_id", how="left")
        .with_columns(pl.coalesce("party", pl.lit("account:") + pl.col("account_id")))
    )


def _with_occasions(frame: pl.DataFrame, ts: str, by: list[str], gap: timedelta) -> pl.DataFrame:
    """`frame` sorted by `by` and `ts`, with `occasion` numbering the occasions of each `by`
    group from 1: times more than `gap` apart start a new one.

    Computed on the sorted frame with shifts and one running sum, not with window expressions
    over the groups: polars spends seconds on 200k small groups of a `shift().over()`."""
    frame = frame.sort([*by, ts])
    first = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in by])
    first = first.fill_null(True)
    new = (first | ((pl.col(ts) - pl.col(ts).shift(1)) > gap)).fill_null(True)
    return (
        frame.with_columns(first.alias("_first"), new.cast(pl.Int64).cum_sum().alias("_n"))
        .with_columns(
            (pl.col("_n") - pl.when("_first").then(pl.col("_n")).forward_fill() + 1)
            .cast(pl.UInt32)
            .alias("occasion")
        )
        .drop("_first", "_n")
    )


def _recurring_pairs(
    cash: pl.DataFrame, window: timedelta, gap: timedelta, m: int, partners: int
) -> pl.DataFrame:
    """location_id, a, b: accounts of two parties withdrawing there within `window` of each
    other on at least `m` occasions (co-occurrences more than `gap` apart).

    Each withdrawal is paired with the next `partners` withdrawals at its location (in time
    order) that fall within `window`: O(W log W + W · partners) for W withdrawals. Pairing all
    withdrawals within the window instead is quadratic in a crowd, and in every day of a
    location when timestamps have day resolution (all at midnight, so all "within minutes").
    """
    ordered = cash.sort("location_id", "ts", "txn_id").with_row_index("_g")
    nxt = pl.int_ranges(pl.col("_g") + 1, pl.col("_g") + 1 + partners, dtype=pl.UInt32)
    steps = (
        ordered.select("_g", nxt.alias("_h")).explode("_h").filter(pl.col("_h") < ordered.height)
    )
    # candidates are told apart by integer codes and times first (`partners` rows per
    # withdrawal); only the few that pass are named (texts gathered for every candidate took
    # 0.8 GB at 5M transactions)
    keys = ordered.select(
        pl.col("location_id").rank("dense").alias("loc"),
        pl.col("party").rank("dense").alias("pty"),
        "ts",
    )
    g, h = steps.get_column("_g"), steps.get_column("_h")
    kept = (
        pl.concat([keys[g], keys[h].rename(lambda c: c + "_b")], how="horizontal")
        .with_columns(g, h)
        .filter(
            pl.col("loc_b") == pl.col("loc"),
            pl.col("pty") != pl.col("pty_b"),
            pl.col("ts_b") - pl.col("ts") <= window,
        )
    )
    g, h = kept.get_column("_g"), kept.get_column("_h")
    cols = ["location_id", "ts", "account_id"]
    near = pl.concat(
        [ordered.select(cols)[g], ordered.select(pl.col("account_id").alias("b"))[h]],
        how="horizontal",
    )
    pairs = near.select(
        "location_id",
        pl.min_horizontal("account_id", "b").alias("a"),
        pl.max_horizontal("account_id", "b").alias("b"),
        "ts",
    ).unique()
    return (
        _with_occasions(pairs, "ts", ["location_id", "a", "b"], gap)
        .group_by("location_id", "a", "b")
        .agg(pl.col("occasion").max().alias("n"))
        .filter(pl.col("n") >= m)
        .select("location_id", "a", "b")
    )


def multi_card_atm(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """The same few cards of different people emptied together at one ATM, again and again.

    Busy ATMs see many strangers within minutes, but strangers do not come back together. A group
    is a set of accounts whose pairs withdrew at one location within `window_minutes` of each
    other on `min_occasions` occasions; it counts when `min_accounts` of its parties withdrew
    within one window on `min_occasions` occasions, and when it has at most `max_accounts`
    accounts (a crowd of regulars, such as commuters at a station ATM, is not one controller).
    Only the group's own withdrawals are reported, each within one window of its partners.

    Cost: O(W log W + W · `max_partners`) for W withdrawals (`_recurring_pairs`); the group's
    windows are counted with `common.covering` and each withdrawal finds its window with an
    as-of join, so a group that withdraws every day costs its withdrawals, not their square.
    """
    if not has_data(ctx.transactions, "location_id"):
        return empty_hits()
    window = timedelta(minutes=float(p["window_minutes"]))
    gap = timedelta(hours=float(p["min_gap_hours"]))
    k, m = int(p["min_accounts"]), int(p["min_occasions"])
    cash = _withdrawals(ctx)
    pairs = _recurring_pairs(cash, window, gap, m, int(p["max_partners"]))
    if pairs.is_empty():
        return empty_hits()
    # One graph per location: account nodes are keyed by location, then mapped back.
    nodes = (
        pl.concat([pairs.select("location_id", pl.col(c).alias("account_id")) for c in "ab"])
        .unique()
        .with_columns((pl.col("location_id") + "|" + pl.col("account_id")).alias("node"))
    )
    comp = components(
        pairs.select(
            (pl.col("location_id") + "|" + pl.col("a")).alias("u"),
            (pl.col("location_id") + "|" + pl.col("b")).alias("v"),
        )
    )
    members = (
        nodes.join(comp, on="node")
        .select("location_id", "account_id", pl.format("g{}", "component").alias("group"))
        .filter(pl.len().over("group") <= p["max_accounts"])
    )
    own = cash.join(members, on=["location_id", "account_id"]).sort("group", "ts", "txn_id")
    if own.is_empty():
        return empty_hits()
    # Windows of the group's own withdrawals ending at each of them; enough parties make one
    # qualifying window, and qualifying windows less than `gap` apart are one occasion.
    anchors = own.select("group", pl.col("ts").alias("anchor")).unique()
    ends = (
        covering(own, ["group"], "party", anchors, pl.col("ts"), pl.col("ts") + window)
        .filter(pl.col("n") >= k)
        .select("group", pl.col("anchor").alias("end"))
    )
    ends = _with_occasions(ends, "end", ["group"], gap)
    # each withdrawal belongs to the earliest qualifying window holding it, if any
    got = (
        own.sort("ts")
        .join_asof(
            ends.sort("end"),
            left_on="ts",
            right_on="end",
            by="group",
            strategy="forward",
            check_sortedness=False,
        )
        .filter(pl.col("end").is_not_null(), pl.col("end") - window <= pl.col("ts"))
    )
    got = (
        got.filter(pl.col("occasion").max().over("group") >= m)
        .sort("group", "ts", "txn_id")
        .with_columns(
            (pl.lit("multi_card_atm:") + pl.col("txn_id").first().over("group")).alias("instance")
        )
    )
    if got.is_empty():
        return empty_hits()
    visits = got.group_by("instance", "occasion").agg(
        ((pl.col("ts").max() - pl.col("ts").min()).dt.total_seconds() / 60).alias("minutes")
    )
    facts = (
        txn_lists(got)
        .join(
            got.group_by("instance").agg(
                pl.col("location_id").first(),
                pl.col("account_id").n_unique().alias("n_accounts"),
                pl.col("party").n_unique().alias("n_parties"),
                pl.col("occasion").n_unique().alias("n_occasions"),
                pl.len().alias("n_withdrawals"),
                pl.col("amount_base").sum().round(2).alias("total_amount"),
                pl.col("ts").min().alias("first_ts"),
                pl.col("ts").max().alias("last_ts"),
                pl.lit(p["window_minutes"]).alias("window_minutes"),
            ),
            on="instance",
        )
        .join(
            visits.group_by("instance").agg(
                pl.col("minutes").max().round(1).alias("longest_occasion_minutes")
            ),
            on="instance",
        )
    )
    return finish(got.select("instance", "account_id", pl.lit("member").alias("role")), facts)


def _at_location(hits: pl.DataFrame) -> pl.DataFrame:
    """A card group's instance is its cash machine's: the `location_id` of its evidence."""
    key = pl.col("evidence").str.json_path_match("$.location_id")
    return hits.select("instance", key.alias("key")).unique(maintain_order=True)


def _withdrawn_there(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """Every cash withdrawal at the partition's locations (`_withdrawals`): a group, its pairs
    and their occasions are found among one location's withdrawals alone."""
    return (pl.col("channel") == "cash_withdrawal") & p.has("location_id")


def _young_key(p: dict[str, float]) -> str:
    return f"young_rows:{float(p['max_age_days'])}"


def _young_rows(tx: pl.LazyFrame, ctx: GraphContext, max_age: timedelta) -> pl.DataFrame:
    """Every transaction `mule_network` reads of `tx`: the transfers between two accounts young
    at the time (its rings), and the transfers abroad to or from an account of one of those
    (`ends_abroad`, the rings' other ends), in the context's columns and types. Two streaming
    scans; only these rows are held (0.2% of the transactions at 5M)."""
    schema = ctx.transactions.schema
    kept = [c for c in ctx.columns if c in set(tx.collect_schema().names())]
    rows = tx.select(pl.col(c).cast(schema[c]) for c in kept).filter(TRANSFER)
    # only accounts opened after (first transaction - max_age) are ever young (`_young_transfers`)
    first = tx.select(pl.col("ts").cast(schema["ts"]).min()).collect().item()
    if first is None:
        return rows.head(0).collect()
    opened = ctx.accounts.select("account_id", "opened_at").filter(
        pl.col("opened_at") >= pl.lit(first) - max_age
    )
    new = opened.get_column("account_id").implode()
    young = (
        rows.select("src_account", "dst_account", "ts")
        .filter(pl.col("src_account").is_in(new), pl.col("dst_account").is_in(new))
        .join(
            opened.lazy().rename({"account_id": "src_account", "opened_at": "o1"}), on="src_account"
        )
        .join(
            opened.lazy().rename({"account_id": "dst_account", "opened_at": "o2"}), on="dst_account"
        )
        .filter(pl.col("ts") - pl.col("o1") <= max_age, pl.col("ts") - pl.col("o2") <= max_age)
    )
    ends = pl.concat([young.select(pl.col(c).alias("a")) for c in ("src_account", "dst_account")])
    ring = ends.unique().collect(engine="streaming").get_column("a").implode()
    src, dst = pl.col("src_account").is_in(ring), pl.col("dst_account").is_in(ring)
    return rows.filter((src & dst) | ((src | dst) & ABROAD)).collect(engine="streaming")


def _prime_young(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """A partition's `mule_network` reads the whole graph's young rows (`_young_rows`): a ring
    is a connected component of the young-account graph, which crosses partitions (at 5M, 96%
    of young accounts are in components spanning the 4 partitions; the largest holds 61%).
    When every account is young (a simulator's data) that is every transfer, in each partition."""
    rows = _young_rows(tx, ctx, days(values["max_age_days"]))
    ctx.memo(_young_key(values), lambda: rows)


def _by_instance(hits: pl.DataFrame) -> pl.DataFrame:
    """A ring is keyed by its instance (a ring has no one account it belongs to): found on the
    primed young rows alone, by the first partition (`Anchored.once`)."""
    return hits.select("instance", pl.col("instance").alias("key")).unique(maintain_order=True)


def _none(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """No rows beyond the primed young rows (`_prime_young`)."""
    return pl.lit(False)


ANCHORED = {
    "multi_card_atm": Anchored(_at_location, _withdrawn_there),
    "mule_network": Anchored(_by_instance, _none, _prime_young, once=True),
}
"""A card group is its cash machine's: every withdrawal there. A mule ring is found on the young
transfers and their abroad legs, by the first partition alone."""
