"""Layering chains, found from pass-through links that each partition finds for its accounts.

A pass-through link joins a transfer into an account to one the account makes soon after: within
`max_hop_hours`, keeping between `min_ratio` and `max_ratio` of the amount, not back to the payer;
of the account's first `max_scan` transfers after the money arrived, the first MAX_NEXT_PER_PATH
that qualify. A link depends on its account's own transfers alone, so a partition finds the links
of its accounts (`links`: anchored at the intermediary, reading the transfers to and from the
partition's accounts), and the chains are grown and joined into instances on the union of every
partition's links (`chains`): a table of the transfers that pass money on, not of every transfer.
On one machine `layering_chains` is the two in one process, so the partitioned run and the whole
one grow their chains on the same table and give the same instances (tests/graph/test_layering.py).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from flows87.pipeline.graph.anchored import Linked, Partition
from flows87.pipeline.graph.common import (
    GraphContext,
    components,
    empty_hits,
    fair_cap,
    finish,
    txn_lists,
)
from flows87.pipeline.graph.flows import (
    MAX_NEXT_PER_PATH,
    as_long,
    by_time,
    first_hops,
    next_hops,
    numbered,
    path_facts,
    ranked,
)

MIN_JOIN_BUDGET = 250_000
"""Candidate rows a hop may always make, however few the run's transfers (`chains`)."""


SIDE = {"txn": "txn_id", "ts": "ts", "src": "src", "dst": "dst", "amt": "amt"}
"""A link's u_*/v_* columns (`links`) and the transfer columns (`by_time`) they hold."""


def _least(p: dict[str, float]) -> float:
    """No hop of a qualifying chain is smaller than this."""
    return float(p["min_amount"]) * float(p["min_ratio"]) ** (int(p["max_hops"]) - 1)


def links(ctx: GraphContext, p: dict[str, float], part: Partition | None) -> pl.DataFrame:
    """The pass-through links through the accounts of `part` (every account when
    None), from the context's transfers, which must hold each such account's transfers in and
    out. A link is the transfer u into an account and the transfer v the account makes next:
    u_txn, u_ts, u_src, u_dst, u_amt and v_txn, v_ts, v_dst, v_amt (v is from u_dst).
    Cost: O(E log E + E · max_scan) for the E transfers read."""
    lo, hi = float(p["min_ratio"]), float(p["max_ratio"])
    gap = timedelta(hours=float(p["max_hop_hours"]))
    every = by_time(ctx)
    edges = every.filter(pl.col("amt") >= _least(p))
    arrived = edges if part is None else edges.filter(part.has("dst"))
    left = arrived.select(
        pl.col("d").alias("_from"),
        pl.col("ts").alias("t"),
        pl.col("x").alias("u"),
        pl.col("amt").alias("a"),
        pl.col("s").alias("payer"),
    )
    found = (
        next_hops(edges)
        .after(left, "t", int(p["max_scan"]), within=gap)
        .filter(
            pl.col("_t") <= pl.col("t") + gap,
            pl.col("_a") >= lo * pl.col("a"),
            pl.col("_a") <= hi * pl.col("a"),
            pl.col("_to") != pl.col("payer"),
        )
    )
    # candidates come by arrival, then in time: the first MAX_NEXT_PER_PATH of each arrival
    found = found.filter(pl.int_range(pl.len()).over("u") < MAX_NEXT_PER_PATH)
    u, v = found.get_column("u"), found.get_column("_x")
    return pl.DataFrame(
        [
            *(every.get_column(c).gather(u).alias(f"u_{k}") for k, c in SIDE.items()),
            *(every.get_column(c).gather(v).alias(f"v_{k}") for k, c in SIDE.items() if k != "src"),
        ]
    )


def _transfers(found: pl.DataFrame) -> pl.DataFrame:
    """The transfers the links join, ranked in time order (then id) as `by_time` ranks them."""
    us = found.select(pl.col(f"u_{k}").alias(c) for k, c in SIDE.items())
    # v is paid from the account u paid: its sender is u's receiver
    vs = found.select(pl.col("u_dst" if k == "src" else f"v_{k}").alias(c) for k, c in SIDE.items())
    return ranked(pl.concat([us, vs]).unique("txn_id").sort("ts", "txn_id"))


def _follow(paths: pl.DataFrame, nxt: pl.DataFrame, k: int, budget: float) -> pl.DataFrame:
    """Paths of k hops (with `pid`) joined to the links from their last transfer, in path
    order, then time; rows keep their parent's `pid`. When the candidates would pass `budget`,
    the paths are cut first (`fair_cap`: the busiest origins lose theirs first). The new
    account may not repeat one of the path's: checked here, on the path, after its link took
    the first MAX_NEXT_PER_PATH of the account's qualifying transfers (a link cannot know the
    path; before the links, a path took its first MAX_NEXT_PER_PATH that repeated none)."""
    j = k + 1
    xs = [f"x{i}" for i in range(1, k + 1)]
    out = nxt.rename({"_v": f"x{j}", "_n": f"n{j}", "_t": f"t{j}", "_a": f"a{j}"})
    weight = out.group_by("_u").agg(pl.len().alias("_w"))
    weighed = paths.join(
        weight, left_on=f"x{k}", right_on="_u", how="left", maintain_order="left"
    ).with_columns(pl.col("_w").fill_null(0))
    if weighed.get_column("_w").sum() > budget:
        paths = fair_cap(weighed, "_w", "n0", [*xs, "pid"], budget).sort("pid").drop("_w")
    repeats = [pl.col(f"n{j}") == pl.col(f"n{i}") for i in range(k)]
    return paths.join(
        out, left_on=f"x{k}", right_on="_u", how="inner", maintain_order="left_right"
    ).filter(~pl.any_horizontal(repeats))


def chains(found: pl.DataFrame, p: dict[str, float], transfers: int) -> pl.DataFrame:
    """Layering chains (see `layering_chains`) from the links of every account (`links`) and
    the run's count of account-to-account transfers (the candidate budget's unit). The result
    does not depend on the links' order."""
    if found.is_empty():
        return empty_hits()
    min_hops, max_hops = int(p["min_hops"]), int(p["max_hops"])
    every = _transfers(found)
    x = every.select("txn_id", "x")
    nxt = (
        found.select("u_txn", "v_txn")
        .join(x.rename({"txn_id": "u_txn", "x": "_u"}), on="u_txn")
        .join(x.rename({"txn_id": "v_txn", "x": "_v"}), on="v_txn")
        .select("_u", "_v")
        .sort("_u", "_v")
    )
    nxt = nxt.with_columns(
        every.get_column("d").gather(nxt.get_column("_v")).alias("_n"),
        every.get_column("ts").gather(nxt.get_column("_v")).alias("_t"),
        every.get_column("amt").gather(nxt.get_column("_v")).alias("_a"),
    )
    budget = max(MIN_JOIN_BUDGET, p["max_paths_per_transfer"] * transfers)
    paths = numbered(first_hops(every.filter(pl.col("amt") >= p["min_amount"])))
    done: list[tuple[int, pl.DataFrame]] = []
    used: list[pl.DataFrame] = []
    for k in range(1, max_hops + 1):
        j = k + 1
        if k < max_hops:
            ext = _follow(paths, nxt, k, budget)
            used.append(ext.select(pl.col(f"x{k}").alias("u"), pl.col(f"x{j}").alias("v")))
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
            done.append((k, ended.drop("pid")))
        paths = numbered(ext.drop("pid"))
        if paths.is_empty():
            break
    if not used or not any(f.height for _, f in done):
        return empty_hits()
    return _chain_instances(every, done, pl.concat(used).unique(), max_hops)


def layering_chains(ctx: GraphContext, p: dict[str, float]) -> pl.DataFrame:
    """Simple paths of pass-through hops, each leaving soon after the previous arrived; the
    chains that share transfers or pass-through links are one instance.

    Chains start at transfers that continue no earlier qualifying hop and grow up to
    `max_hops`; a chain is then reported with everything linked to it by pass-through links
    (a transfer leaving an account within `max_hop_hours` of one arriving, with the ratio
    kept): the branches of one chain, the chains that cross it, and a long chain beyond
    `max_hops`, so a 100,000-hop chain is one instance, not thousands of overlapping ones.
    Its facts are those of its longest chain (`hops`, amounts, times), with the size of the
    whole (`chain_transfers`, `chain_accounts`); its origins are the senders of transfers
    that continue none, its ends the receivers of transfers that none continues.

    Cost: O(E log E + E · max_scan) for the links of E transfers, then O(H · L log L) for
    H = `max_hops` and L links: a hop makes at most about max(MIN_JOIN_BUDGET,
    `max_paths_per_transfer` x E) candidate rows, the busiest origin accounts' paths cut
    first; plus the linear labelling of the links into connected pieces.
    """
    return chains(links(ctx, p, None), p, by_time(ctx).height)


def _chain_instances(
    every: pl.DataFrame,
    found: list[tuple[int, pl.DataFrame]],
    links: pl.DataFrame,
    max_hops: int,
) -> pl.DataFrame:
    """One instance per connected piece of found chains, named and described by its longest
    chain (then the earliest to end, then the first by name).

    Found chains that share a transfer are one piece; a chain cut at `max_hops` takes in
    everything its pass-through links reach (the rest of a long chain, its branches), while
    the links of other chains count only between transfers of found chains (a one-hop branch
    off a short chain is not a chain).
    """
    links = links.select(pl.col("u").cast(pl.Int64), pl.col("v").cast(pl.Int64))
    reach = components(links).rename({"node": "u", "component": "reach"})
    on_chains = (
        pl.concat(
            [
                f.select(pl.concat_list(f"x{i}" for i in range(1, hops + 1)).alias("u"))
                for hops, f in found
                if not f.is_empty()
            ]
        )
        .explode("u")
        .unique()
        .select(pl.col("u").cast(pl.Int64))
    )
    cut = (
        pl.concat(
            [
                f.select(pl.col("x1").cast(pl.Int64).alias("u"))
                for hops, f in found
                if hops == max_hops
            ]
            or [on_chains.head(0)]
        )
        .join(reach, on="u")
        .select("reach")
        .unique()
    )
    links = pl.concat(
        [
            links.join(on_chains, on="u", how="semi").join(
                on_chains.rename({"u": "v"}), on="v", how="semi"
            ),
            links.join(reach, on="u").join(cut, on="reach", how="semi").drop("reach"),
        ]
    ).unique()
    piece = components(pl.concat([links, on_chains.select("u", pl.col("u").alias("v"))])).rename(
        {"node": "x"}
    )
    txn = every.get_column("txn_id")
    # the longest chain of each piece, then the earliest to end, then the first by name
    chained = pl.concat(
        [
            f.select(
                pl.lit(hops, pl.Int32).alias("hops"),
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
                pl.col(f"t{hops}").alias("end"),
                pl.col("x1").cast(pl.Int64).alias("x"),
            )
            for hops, f in found
            if not f.is_empty()
        ]
    ).join(piece, on="x")
    first = chained.sort(["component", "hops", "end"], descending=[False, True, False]).unique(
        "component", keep="first", maintain_order=True
    )
    tied = chained.join(first.select("component", "hops", "end"), on=["component", "hops", "end"])
    best = (
        tied.with_columns(txn.gather(tied.get_column("x")).alias("first_txn"))
        .sort("component", "first_txn", "hops", "row")
        .unique("component", keep="first", maintain_order=True)
    )
    frames = dict(found)
    named = [
        (hops, frames[hops][group.get_column("row")].select(f"x{i}" for i in range(1, hops + 1)))
        for (hops,), group in best.partition_by("hops", as_dict=True).items()
    ]
    long = as_long(every, named, "layering_chain").join(
        best.select(pl.col("first_txn").alias("id1"), "component")
        .with_columns((pl.lit("layering_chain:") + pl.col("id1")).alias("instance"))
        .drop("id1"),
        on="instance",
    )
    txns = piece.join(long.select("component", "instance"), on="component").join(
        every.select(pl.col("x").cast(pl.Int64), "txn_id", "ts", "src", "dst"), on="x"
    )
    continues = txns.join(links.select(pl.col("v").alias("x")).unique(), on="x", how="semi")
    continued = txns.join(links.select(pl.col("u").alias("x")).unique(), on="x", how="semi")
    roots = txns.join(continues.select("x"), on="x", how="anti")
    leaves = txns.join(continued.select("x"), on="x", how="anti")
    # origins first (senders of the transfers that continue none), ends last (receivers of the
    # transfers none continues), the accounts between in order of time
    every_member = pl.concat(
        [
            roots.sort("ts", "txn_id").select(
                "instance", pl.col("src").alias("account_id"), pl.lit(0).alias("rank")
            ),
            txns.sort("ts", "txn_id").select(
                "instance", pl.col("dst").alias("account_id"), pl.lit(1).alias("rank")
            ),
        ]
    ).unique(["instance", "account_id"], keep="first", maintain_order=True)
    ends = leaves.select("instance", pl.col("dst").alias("account_id"), pl.lit(True).alias("end"))
    members = (
        every_member.join(
            ends.unique(), on=["instance", "account_id"], how="left", maintain_order="left"
        )
        .with_columns(
            pl.when(pl.col("rank") == 0)
            .then(pl.lit("origin"))
            .when(pl.col("end").fill_null(False))
            .then(pl.lit("end"))
            .otherwise(pl.lit("intermediary"))
            .alias("role")
        )
        .with_columns(
            pl.col("role")
            .replace_strict({"origin": 0, "intermediary": 1, "end": 2}, return_dtype=pl.Int8)
            .alias("rank")
        )
        .sort("instance", "rank", maintain_order=True)
        .select("instance", "account_id", "role")
    )
    size = (
        txns.group_by("instance")
        .agg(pl.len().alias("chain_transfers"))
        .join(
            every_member.group_by("instance").agg(pl.len().alias("chain_accounts")), on="instance"
        )
    )
    facts = (
        path_facts(long)
        .drop("txn_ids")
        .join(txn_lists(txns.select("instance", "txn_id", "ts")), on="instance")
        .join(size, on="instance")
    )
    return finish(members, facts)


LINKED = {"layering_chain": Linked(links, chains)}
"""A layering chain joins chains of many origins and follows a chain beyond `max_hops` as far
as it goes, so no neighbourhood of one account holds an instance; its links are each one
account's, and the chains are grown on every partition's links (graph/anchored.py `Linked`)."""
