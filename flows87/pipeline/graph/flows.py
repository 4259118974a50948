"""Time-respecting money paths: round-trip cycles, and the helpers layering chains share.

A path is grown one hop at a time by joining its last account to the transfers that account made
later, with the amount staying within a ratio of the previous hop's. Each hop is one polars join,
so the work grows with the number of live paths, not with the number of accounts. Columns n0..nk
are the path's accounts, xi/ti/ai the transfer (its rank in time order), time and amount of hop
i; accounts and transfers are integer codes while paths grow, and named again at the end.

What bounds the work, whatever the graph's shape:

- a path examines at most `max_scan` of its account's next transfers (the earliest after it
  arrived, within the time limit), found with an as-of join (`common.Following`) instead of a
  join on the account that pairs every arrival with every departure (quadratic at a hub, or
  between two accounts that pay each other daily), and follows at most MAX_NEXT_PER_PATH of
  them;
- from the second hop on, each origin account grows at most `max_paths_per_origin` paths, so a
  dense ring of accounts that pay each other again and again is cut, not the rest of the data.

So a hop costs O(E log E), and a pattern O(H · E log E) for H hops. Layering chains
(graph/layering.py) follow pass-through links found the same way.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from flows87.pipeline.graph.anchored import Anchored, Partition, by_role
from flows87.pipeline.graph.common import (
    Following,
    GraphContext,
    code,
    codes_of,
    days,
    empty_hits,
    finish,
    transfers,
)
from flows87.pipeline.graph.context import TRANSFER

MAX_NEXT_PER_PATH = 10
"""At most this many next hops (the earliest) are followed from one path."""


def by_time(ctx: GraphContext) -> pl.DataFrame:
    """Transfers in time order (then id), with `x` their rank and `s`/`d` integer account codes:
    the ranks stand for transfers, the codes for accounts, while paths grow."""

    def make() -> pl.DataFrame:
        return ranked(transfers(ctx).select("txn_id", "ts", "src", "dst", "amt"))

    return ctx.memo("transfers_by_time", make)


def ranked(every: pl.DataFrame) -> pl.DataFrame:
    """`by_time` of transfers (txn_id, ts, src, dst, amt) in time order (then id). Ranks and
    codes keep the order of time and of account ids, so those of some of the transfers order
    them as those of all of them do."""
    accounts = codes_of(every.get_column("src"), every.get_column("dst"))
    assert accounts is not None
    return every.with_columns(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("x"),
        code("src", accounts).alias("s"),
        code("dst", accounts).alias("d"),
    )


def _least_hop(p: dict[str, float]) -> float:
    """No hop of a cycle can be smaller than this (each keeps at least `min_ratio`)."""
    return float(p["min_amount"]) * float(p["min_ratio"]) ** (int(p["max_length"]) - 1)


def _cycle_key(p: dict[str, float]) -> str:
    keys = ("window_days", "max_length", "min_amount", "min_ratio")
    return "transfers_by_time:cycle:" + ":".join(str(float(p[k])) for k in keys)


def cycle_transfers(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """The transfers `cycles` reads: `by_time` of the context (the same table, not a copy),
    or in a partition's context those primed by `_cycles_reach` from the whole graph."""
    return ctx.memo(_cycle_key(p), lambda: by_time(ctx))


def first_hops(edges: pl.DataFrame) -> pl.DataFrame:
    return edges.select(
        pl.col("s").alias("n0"),
        pl.col("d").alias("n1"),
        pl.col("x").alias("x1"),
        pl.col("ts").alias("t1"),
        pl.col("amt").alias("a1"),
    )


def next_hops(edges: pl.DataFrame) -> Following:
    """Each account's transfers in time order, for `_extend`."""
    nxt = edges.select(
        pl.col("s").alias("_from"),
        pl.col("ts").alias("_t"),
        pl.col("d").alias("_to"),
        pl.col("x").alias("_x"),
        pl.col("amt").alias("_a"),
    )
    return Following(nxt, "_from", ["_x"])


def _extend(
    paths: pl.DataFrame,
    nxt: Following,
    k: int,
    ratio: tuple[float, float],
    within: timedelta,
    in_time: pl.Expr,
    scan: int,
) -> pl.DataFrame:
    """Paths of k hops (with `pid`) joined to their valid hop k+1, at most MAX_NEXT_PER_PATH
    each; rows keep their parent's `pid`.

    The new account may not repeat n1..n{k-1} (a cycle's n0 closes it): the path stays simple.
    Candidates are the first `scan` transfers of n{k} after t{k} and within `within` of it.
    """
    j = k + 1
    new = pl.col(f"n{j}")
    repeats = [new == pl.col(f"n{i}") for i in range(1, k)]
    out = (
        nxt.after(paths.rename({f"n{k}": "_from"}), f"t{k}", scan, within=within)
        .rename({"_from": f"n{k}", "_t": f"t{j}", "_to": f"n{j}", "_x": f"x{j}", "_a": f"a{j}"})
        .filter(
            in_time,
            pl.col(f"a{j}") >= ratio[0] * pl.col(f"a{k}"),
            pl.col(f"a{j}") <= ratio[1] * pl.col(f"a{k}"),
            ~pl.any_horizontal(repeats) if repeats else pl.lit(True),
        )
    )
    # Candidates come in path order, then time: the first MAX_NEXT_PER_PATH rows of each path.
    first = pl.col("pid") != pl.col("pid").shift()
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    start = pl.when(first.fill_null(True)).then(row).forward_fill()
    return out.filter(row - start < MAX_NEXT_PER_PATH)


def numbered(paths: pl.DataFrame) -> pl.DataFrame:
    """`paths` with `pid`, its row number. Rows keep a deterministic order from the time-ordered
    transfers through every hop (`Following` keeps its left rows' order), so `pid` does too."""
    return paths.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("pid"))


def as_long(every: pl.DataFrame, found: list[tuple[int, pl.DataFrame]], kind: str) -> pl.DataFrame:
    """One row per path: instance, hops, nodes, txn_ids, amounts and the time stamps, of paths
    of transfers ranked in `every` (`by_time`)."""
    txn, src, dst = every.get_column("txn_id"), every.get_column("src"), every.get_column("dst")
    amt, ts = every.get_column("amt"), every.get_column("ts")
    frames = []
    for hops, f in found:
        if f.is_empty():
            continue
        xs = [f.get_column(f"x{i}") for i in range(1, hops + 1)]
        # v0 once in a cycle; a chain's last account is the last hop's receiver
        nodes = [src.gather(x).alias(f"v{i}") for i, x in enumerate(xs)]
        if kind != "cycle":
            nodes.append(dst.gather(xs[-1]).alias(f"v{hops}"))
        named = pl.DataFrame(
            [
                *nodes,
                *(txn.gather(x).alias(f"id{i}") for i, x in enumerate(xs, 1)),
                *(amt.gather(x).alias(f"a{i}") for i, x in enumerate(xs, 1)),
                *(ts.gather(x).alias(f"t{i}") for i, x in enumerate(xs, 1)),
                *xs,
            ]
        )
        frames.append(
            named.select(
                (pl.lit(f"{kind}:") + pl.col("id1")).alias("instance"),
                pl.lit(hops).alias("hops"),
                pl.concat_list([f"v{i}" for i in range(len(nodes))]).alias("nodes"),
                pl.concat_list([f"id{i}" for i in range(1, hops + 1)]).alias("txn_ids"),
                pl.concat_list([f"a{i}" for i in range(1, hops + 1)]).alias("amounts"),
                pl.concat_list([f"t{i}" for i in range(1, hops + 1)]).alias("times"),
                pl.concat_list([f"x{i}" for i in range(1, hops + 1)]).alias("xs"),
            )
        )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames)


def path_facts(paths: pl.DataFrame) -> pl.DataFrame:
    first, last = pl.col("amounts").list.first(), pl.col("amounts").list.last()
    t0, t1 = pl.col("times").list.first(), pl.col("times").list.last()
    gaps = pl.col("times").list.diff(null_behavior="drop").list.max()
    return paths.select(
        "instance",
        "txn_ids",
        "hops",
        first.round(2).alias("first_amount"),
        last.round(2).alias("last_amount"),
        (last / first).round(4).alias("retained"),
        pl.col("amounts").list.eval(pl.element().round(2)).alias("amounts"),
        t0.alias("first_ts"),
        t1.alias("last_ts"),
        ((t1 - t0).dt.total_seconds() / 3600).round(2).alias("duration_hours"),
        (gaps.dt.total_seconds() / 3600).round(2).alias("max_hop_hours"),
    )


def _members(paths: pl.DataFrame, last_role: str | None) -> pl.DataFrame:
    pos = pl.int_range(pl.len()).over("instance")
    first, other = pl.when(pos == 0).then(pl.lit("origin")), pl.lit("intermediary")
    if last_role is None:
        role = first.otherwise(other)
    else:
        last = pos == pl.len().over("instance") - 1
        role = first.when(last).then(pl.lit(last_role)).otherwise(other)
    return (
        paths.select("instance", pl.col("nodes").alias("account_id"))
        .explode("account_id")
        .with_columns(role.alias("role"))
    )


def cycles(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Round trips v0 -> ... -> v0 in time order within the window, most of the amount returned.

    Cost: O(L · E log E) for E transfers and cycles of up to L hops, `max_scan` candidates per
    path; from the second hop on, each origin account grows at most `max_paths_per_origin`
    paths (its first, in time order; the 5M run's busiest origin grows 655 at the second hop), so a dense ring costs each of its accounts a bounded share
    whatever the other accounts do (a budget shared by all origins would make one account's
    cycles depend on the rest of the graph, and a partition's differ from the whole's:
    graph/anchored.py). At most `max_per_account` cycles are reported per origin account (the
    shortest, then the earliest), so a dense ring of accounts paying each other yields a few
    cycles per account, not one per transfer.
    """
    lo, hi = float(p["min_ratio"]), float(p["max_ratio"])
    min_len, max_len = int(p["min_length"]), int(p["max_length"])
    window = days(p["window_days"])
    every = cycle_transfers(ctx, p)
    # No hop of a qualifying cycle can be smaller than this, so smaller transfers never join.
    edges = every.filter(pl.col("amt") >= _least_hop(p))
    paths = first_hops(edges.filter(pl.col("amt") >= p["min_amount"]))
    nxt, scan = next_hops(edges), int(p["max_scan"])
    found: list[tuple[int, pl.DataFrame]] = []
    for k in range(1, max_len):
        j = k + 1
        in_time = pl.col(f"t{j}") <= pl.col("t1") + window
        if k > 1:
            paths = paths.filter(pl.int_range(pl.len()).over("n0") < p["max_paths_per_origin"])
        paths = _extend(numbered(paths), nxt, k, (lo, hi), window, in_time, scan)
        paths = paths.drop("pid")
        closes = pl.col(f"n{j}") == pl.col("n0")
        if j >= min_len:
            found.append((j, paths.filter(closes)))
        paths = paths.filter(~closes)
        if paths.is_empty():
            break
    long = as_long(every, found, "cycle")
    if long.is_empty():
        return empty_hits()
    # One cycle per first transfer and per closing transfer: the shortest, then the earliest;
    # and at most `max_per_account` per origin account.
    long = (
        long.sort("hops", pl.col("times").list.last(), "instance", maintain_order=True)
        .unique("instance", keep="first", maintain_order=True)
        .unique(pl.col("txn_ids").list.last(), keep="first", maintain_order=True)
        .filter(pl.int_range(pl.len()).over(pl.col("nodes").list.first()) < p["max_per_account"])
    )
    facts = (
        path_facts(long)
        .rename({"hops": "length", "last_amount": "returned_amount"})
        .drop("max_hop_hours")
    )
    return finish(_members(long, None), facts)


def _frontier(hops: pl.DataFrame) -> pl.DataFrame:
    """v, e, D: each account money reached, its earliest arrival and its latest deadline."""
    return hops.group_by(pl.col("dst_account").alias("v")).agg(
        pl.col("ts").min().alias("e"), pl.col("D").max()
    )


def _cycle_reach(tx: pl.LazyFrame, origins: pl.Series, p: dict[str, float]) -> pl.DataFrame:
    """The transfers (txn_id, ts, src, dst, amt in time order) a cycle from `origins` may
    follow: found by joining a frontier of accounts to the transfers hop after hop, each
    account's transfers after money first reached it and up to the latest deadline (first hop
    + `window_days`) of the money that reached it, of at least the smallest hop's amount.
    Every candidate of every path from `origins` is among them (a path at an account at t
    examines its transfers after t, and keeps only those before its deadline)."""
    edges = tx.filter(TRANSFER, pl.col("amount_base") >= _least_hop(p)).select(
        "txn_id", "ts", "src_account", "dst_account", "amount_base"
    )
    first = (
        edges.filter(
            pl.col("amount_base") >= p["min_amount"],
            pl.col("src_account").is_in(origins.implode()),
        )
        .with_columns((pl.col("ts") + days(p["window_days"])).alias("D"))
        .collect(engine="streaming")
    )
    found, front = [first], _frontier(first)
    for _ in range(1, int(p["max_length"])):
        hops = (
            edges.join(front.lazy(), left_on="src_account", right_on="v")
            .filter(pl.col("ts") > pl.col("e"), pl.col("ts") <= pl.col("D"))
            .drop("e")
            .collect(engine="streaming")
        )
        if hops.is_empty():
            break
        found.append(hops)
        front = _frontier(hops)
    return (
        pl.concat([f.drop("D") for f in found])
        .unique("txn_id")
        .sort("ts", "txn_id")
        .select(
            "txn_id",
            "ts",
            pl.col("src_account").alias("src"),
            pl.col("dst_account").alias("dst"),
            pl.col("amount_base").alias("amt"),
        )
    )


def _cycles_reach(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """Prime `cycles` in a partition: the transfers its cycles may follow, from every account
    that made a first hop in the partition's context (its own accounts among them), found on
    the whole graph with the rule's window, length and amounts (what the reach cannot know)."""
    first = transfers(ctx, float(values["min_amount"])).get_column("src").unique()
    table = ranked(_cycle_reach(tx, first, values))
    ctx.memo(_cycle_key(values), lambda: table)


def _sent(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """What the partition's accounts paid: their cycles' first hops (`_cycles_reach`)."""
    return p.has("src_account")


ANCHORED = {"cycle": Anchored(by_role("origin"), _sent, _cycles_reach, shared_prime=False)}
"""A cycle is its origin's: what the origin paid (its first hops), and the rest of its paths
primed: every transfer its money may reach within the window, hop after hop, on the whole
graph. Layering chains are found from links (graph/layering.py)."""
