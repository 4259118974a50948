"""Layering chains from pass-through links found a partition at a time (graph/layering.py): the
partitions' links together are the whole graph's, and the chains grown on them are the whole
graph's whatever the links' order, on the labelled run and on a long chain through every
partition."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from graph_rows import context, evidence, t
from polars.testing import assert_frame_equal

from flows87.pipeline.graph import layering
from flows87.pipeline.graph.anchored import Partition
from flows87.pipeline.graph.context import GraphContext
from flows87.pipeline.graph.flows import by_time
from flows87.pipeline.graph.hits import HIT_SCHEMA
from flows87.pipeline.graph.patterns import LINKED, PATTERNS, find
from tests.graph.anchored_check import run_tables

KEY = ["u_txn", "v_txn"]


def _by_partition(
    ctx: GraphContext, values: dict[str, float], partitions: int
) -> tuple[pl.DataFrame, list[int]]:
    """Every partition's links, each found on the transactions its reach reads, and the rows
    each read."""
    spec = LINKED["layering_chain"]
    tx = ctx.transactions
    found, sizes = [], []
    for part in range(partitions):
        p = Partition(part, partitions)
        near = tx.filter(spec.reach(tx.lazy(), ctx.accounts, p))
        sizes.append(near.height)
        part_ctx = GraphContext(near, ctx.accounts, ctx.features, ctx.signals)
        found.append(spec.pieces(part_ctx, values, p))
    return pl.concat(found), sizes


def _chains(links: pl.DataFrame, values: dict[str, float], ctx: GraphContext) -> pl.DataFrame:
    hits = LINKED["layering_chain"].join(links, values, by_time(ctx).height)
    return hits.select(list(HIT_SCHEMA.names())).cast(HIT_SCHEMA)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"min_hops": 2, "min_ratio": 0.5, "max_hop_hours": 120}],
    ids=["defaults", "wide"],
)
def test_the_partitions_links_grow_the_whole_graphs_chains(
    labelled_run: Path, overrides: dict[str, float]
) -> None:
    tx, accounts, features, prior = run_tables(labelled_run)
    ctx = GraphContext(tx, accounts, features, prior)
    values = {**PATTERNS["layering_chain"].params, **overrides}
    whole = find(ctx, "layering_chain", overrides)
    assert whole["instance"].n_unique() >= 2  # the comparison compares something
    links, sizes = _by_partition(ctx, values, 4)
    assert max(sizes) < tx.height
    assert links.height == links.unique(KEY).height  # each link is one partition's
    assert_frame_equal(links.sort(KEY), layering.links(ctx, values, None).sort(KEY))
    # the links far fewer than the transfers: what the merge holds
    assert links.height < by_time(ctx).height / 5
    shuffled = links.sample(fraction=1.0, shuffle=True, seed=87)
    assert_frame_equal(_chains(shuffled, values, ctx), whole)


def test_a_long_chain_through_every_partition_is_one_instance() -> None:
    hops = 120
    rows = [t(f"h{i:03d}", i / 6, f"C{i:03d}", f"C{i + 1:03d}", 5000) for i in range(hops)]
    # a branch off the chain's middle and a slow onward payment that is no link
    rows += [t("b1", 60 / 6 + 1, "C060", "X1", 4500), t("s1", 200, "C120", "X2", 4900)]
    ctx = context(rows)
    values = PATTERNS["layering_chain"].params
    whole = find(ctx, "layering_chain")
    assert whole["instance"].unique().to_list() == ["layering_chain:h000"]
    ev = evidence(whole)
    assert ev["chain_transfers"] == hops + 1 and ev["chain_accounts"] == hops + 2
    for partitions in (2, 7):
        links, _ = _by_partition(ctx, values, partitions)
        assert links.height == hops  # every hop's link, and the branch's; no slow one
        assert_frame_equal(_chains(links, values, ctx), whole)


def test_no_links_no_chains() -> None:
    ctx = context([t("x1", 0, "A", "B", 1000), t("x2", 100, "B", "C", 990)])  # too slow
    values = PATTERNS["layering_chain"].params
    links = layering.links(ctx, values, None)
    assert links.is_empty() and links.columns[0] == "u_txn"
    assert _chains(links, values, ctx).is_empty()
