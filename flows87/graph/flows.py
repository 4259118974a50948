"""Time-respecting money paths: round-trip cycles and layering chains.

A path is grown one hop at a time by joining its last account to the transfers that account made
later, with the amount staying within a ratio of the previous hop's. Each hop is one polars join,
so the work grows with the number of live paths, not with the number of accounts; a cap on the
next hops per path and on the whole frontier keeps a hub (a payroll processor, an exchange) from
multiplying it. Columns n0..nk are the path's accounts, xi/ti/ai the txn id, time and amount of
hop i.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import polars as pl

from flows87.graph.common import GraphContext, days, empty_hits, finish, transfers

log = logging.getLogger(__name__)

MAX_NEXT_PER_PATH = 10
"""At most this many next hops (the earliest) are followed from one path."""

MAX_FRONTIER = 1_000_000
"""At most this many live paths per hop; beyond it the earliest-starting paths are kept."""

JOIN_BUDGET_PER_ACCOUNT = 100_000
"""At most (this / the account's transfer count) paths, the earliest, are joined at one account,
so a hub with many payers and many payees cannot multiply the join before it is filtered."""


def _first_hops(edges: pl.DataFrame) -> pl.DataFrame:
    return edges.select(
        pl.col("src").alias("n0"),
        pl.col("dst").alias("n1"),
        pl.col("txn_id").alias("x1"),
        pl.col("ts").alias("t1"),
        pl.col("amt").alias("a1"),
    )


def _within_budget(paths: pl.DataFrame, nxt: pl.DataFrame, at: str, ts: str) -> pl.DataFrame:
    """Keep the earliest paths at each account whose (paths x transfers) would pass the budget."""
    fan_out = (
        nxt.join(paths.select(at).unique(), on=at, how="semi")
        .group_by(at)
        .agg(pl.len().alias("fan_out"))
    )
    load = paths.group_by(at).agg(pl.len().alias("arriving")).join(fan_out, on=at)
    if not (load["arriving"] * load["fan_out"] > JOIN_BUDGET_PER_ACCOUNT).any():
        return paths
    allowed = (JOIN_BUDGET_PER_ACCOUNT // pl.col("fan_out")).clip(lower_bound=1)
    return (
        paths.join(fan_out, on=at, how="left")
        .sort(at, ts)
        .filter(pl.col("fan_out").is_null() | (pl.int_range(pl.len()).over(at) < allowed))
        .drop("fan_out")
    )


def _extend(
    paths: pl.DataFrame,
    edges: pl.DataFrame,
    k: int,
    ratio: tuple[float, float],
    in_time: pl.Expr,
    avoid_from: int,
) -> pl.DataFrame:
    """Paths of k hops joined to their valid hop k+1 (rows keep the parent's `pid`).

    The new account may not repeat n{avoid_from}..n{k-1}: the path stays simple.
    """
    j = k + 1
    nxt = edges.select(
        pl.col("src").alias(f"n{k}"),
        pl.col("dst").alias(f"n{j}"),
        pl.col("txn_id").alias(f"x{j}"),
        pl.col("ts").alias(f"t{j}"),
        pl.col("amt").alias(f"a{j}"),
    )
    new = pl.col(f"n{j}")
    repeats = [new == pl.col(f"n{i}") for i in range(avoid_from, k)]
    paths = _within_budget(paths, nxt, f"n{k}", f"t{k}")
    out = (
        paths.lazy()
        .join(nxt.lazy(), on=f"n{k}", how="inner")
        .filter(
            pl.col(f"t{j}") > pl.col(f"t{k}"),
            in_time,
            pl.col(f"a{j}") >= ratio[0] * pl.col(f"a{k}"),
            pl.col(f"a{j}") <= ratio[1] * pl.col(f"a{k}"),
            ~pl.any_horizontal(repeats) if repeats else pl.lit(True),
        )
        .sort("pid", f"t{j}")
        .filter(pl.int_range(pl.len()).over("pid") < MAX_NEXT_PER_PATH)
        .collect()
    )
    if out.height > MAX_FRONTIER:
        log.warning("path frontier of %d at hop %d capped to %d", out.height, j, MAX_FRONTIER)
        out = out.sort("t1", "x1").head(MAX_FRONTIER)
    return out


def _as_long(found: list[tuple[int, pl.DataFrame]], kind: str) -> pl.DataFrame:
    """One row per path: instance, hops, nodes, txn_ids, amounts and the time stamps."""
    frames = []
    for hops, f in found:
        if f.is_empty():
            continue
        nodes = [f"n{i}" for i in range(hops + (0 if kind == "cycle" else 1))]  # v0 once
        frames.append(
            f.select(
                (pl.lit(f"{kind}:") + pl.col("x1")).alias("instance"),
                pl.lit(hops).alias("hops"),
                pl.concat_list(nodes).alias("nodes"),
                pl.concat_list([f"x{i}" for i in range(1, hops + 1)]).alias("txn_ids"),
                pl.concat_list([f"a{i}" for i in range(1, hops + 1)]).alias("amounts"),
                pl.concat_list([f"t{i}" for i in range(1, hops + 1)]).alias("times"),
            )
        )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames)


def _facts(paths: pl.DataFrame) -> pl.DataFrame:
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
    role = pl.when(pos == 0).then(pl.lit("origin"))
    if last_role is not None:
        role = role.when(pos == pl.len().over("instance") - 1).then(pl.lit(last_role))
    return (
        paths.select("instance", pl.col("nodes").alias("account_id"))
        .explode("account_id")
        .with_columns(role.otherwise(pl.lit("intermediary")).alias("role"))
    )


def cycles(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Round trips v0 -> ... -> v0 in time order within the window, most of the amount returned."""
    lo, hi = float(p["min_ratio"]), float(p["max_ratio"])
    min_len, max_len = int(p["min_length"]), int(p["max_length"])
    window = days(p["window_days"])
    # No hop of a qualifying cycle can be smaller than this, so smaller transfers never join.
    edges = transfers(ctx, float(p["min_amount"]) * lo ** (max_len - 1))
    paths = _first_hops(edges.filter(pl.col("amt") >= p["min_amount"])).with_row_index("pid")
    found: list[tuple[int, pl.DataFrame]] = []
    for k in range(1, max_len):
        j = k + 1
        paths = _extend(paths, edges, k, (lo, hi), pl.col(f"t{j}") <= pl.col("t1") + window, 1)
        closes = pl.col(f"n{j}") == pl.col("n0")
        if j >= min_len:
            found.append((j, paths.filter(closes)))
        paths = paths.filter(~closes).drop("pid").with_row_index("pid")
        if paths.is_empty():
            break
    long = _as_long(found, "cycle")
    if long.is_empty():
        return empty_hits()
    # One cycle per first transfer and per closing transfer: the shortest, then the earliest.
    long = (
        long.sort("hops", pl.col("times").list.last(), "instance")
        .unique("instance", keep="first", maintain_order=True)
        .unique(pl.col("txn_ids").list.last(), keep="first", maintain_order=True)
    )
    facts = (
        _facts(long)
        .rename({"hops": "length", "last_amount": "returned_amount"})
        .drop("max_hop_hours")
    )
    return finish(_members(long, None), facts)


def layering_chains(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Maximal simple paths of pass-through hops, each leaving soon after the previous arrived."""
    lo, hi = float(p["min_ratio"]), float(p["max_ratio"])
    min_hops, max_hops = int(p["min_hops"]), int(p["max_hops"])
    gap = timedelta(hours=float(p["max_hop_hours"]))
    edges = transfers(ctx, float(p["min_amount"]) * lo ** (max_hops - 1))
    paths = _first_hops(edges.filter(pl.col("amt") >= p["min_amount"])).with_row_index("pid")
    found: list[tuple[int, pl.DataFrame]] = []
    for k in range(1, max_hops + 1):
        j = k + 1
        if k < max_hops:
            ext = _extend(paths, edges, k, (lo, hi), pl.col(f"t{j}") <= pl.col(f"t{k}") + gap, 0)
        else:
            ext = paths.head(0)
        if k == 1:
            # A transfer that continues an earlier qualifying hop is not a chain's start: the
            # chain through the earlier hop contains it.
            continued = ext.select(pl.col("x2").alias("x1")).unique()
            paths = paths.join(continued, on="x1", how="anti")
            ext = ext.join(continued, on="x1", how="anti")
        ended = paths.join(ext.select("pid").unique(), on="pid", how="anti")
        if k >= min_hops:
            found.append((k, ended))
        paths = ext.drop("pid").with_row_index("pid")
        if paths.is_empty():
            break
    long = _as_long(found, "layering_chain")
    if long.is_empty():
        return empty_hits()
    # One chain per first transfer: the longest branch, then the earliest to end.
    long = long.sort(
        ["hops", pl.col("times").list.last(), "instance"], descending=[True, False, False]
    ).unique("instance", keep="first", maintain_order=True)
    return finish(_members(long, "end"), _facts(long))
