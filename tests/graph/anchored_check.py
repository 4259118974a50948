"""A pattern found a partition at a time (graph/anchored.py) against the pattern on the whole
graph: what tests/graph/test_anchored.py asserts for every anchored pattern."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from flows87.pipeline.graph.anchored import Partition, anchored_in
from flows87.pipeline.graph.context import GraphContext
from flows87.pipeline.graph.hits import HIT_SCHEMA
from flows87.pipeline.graph.patterns import ANCHORED, PATTERNS
from flows87.pipeline.stages.common import GRAPH_FEATURE_COLUMNS


def run_tables(run: Path) -> tuple[pl.DataFrame, ...]:
    """What a graph stage reads of a run directory: transactions, accounts, the features it
    keeps and the rules stage's signals."""
    features = pl.read_parquet(run / "features.parquet")
    return (
        pl.read_parquet(run / "transactions.parquet"),
        pl.read_parquet(run / "accounts.parquet"),
        features.select(c for c in features.columns if c in set(GRAPH_FEATURE_COLUMNS)),
        pl.read_parquet(run / "signals_rules.parquet"),
    )


def _hits(ctx: GraphContext, name: str, values: dict[str, float]) -> pl.DataFrame:
    return PATTERNS[name].fn(ctx, values).select(list(HIT_SCHEMA.names())).cast(HIT_SCHEMA)


def whole_and_parts(
    tx: pl.DataFrame,
    accounts: pl.DataFrame,
    features: pl.DataFrame,
    prior: pl.DataFrame,
    name: str,
    overrides: dict[str, float] | None = None,
    partitions: int = 4,
) -> tuple[pl.DataFrame, pl.DataFrame, list[int]]:
    """The pattern's hits on the whole graph, the union of its hits a partition at a time (in
    the order the merge puts them), and each partition's share of the transactions."""
    values = {**PATTERNS[name].params, **(overrides or {})}
    spec = ANCHORED[name]
    whole = _hits(GraphContext(tx, accounts, features, prior), name, values)
    found, sizes = [], []
    for part in range(partitions):
        p = Partition(part, partitions)
        near = tx.filter(spec.reach(tx.lazy(), accounts, p))
        sizes.append(near.height)
        ctx = GraphContext(near, accounts, features, prior)
        if spec.prime is not None:
            spec.prime(tx.lazy(), ctx, values)
        found.append(anchored_in(_hits(ctx, name, values), spec, p))
    union = pl.concat(found).sort("instance", maintain_order=True)
    return whole, union, sizes


def assert_same_by_partition(
    tx: pl.DataFrame,
    accounts: pl.DataFrame,
    features: pl.DataFrame,
    prior: pl.DataFrame,
    name: str,
    overrides: dict[str, float] | None = None,
    partitions: int = 4,
) -> pl.DataFrame:
    """Assert the union of the partitions' hits is the whole graph's (row for row, in order)
    and that no partition read every transaction; return the whole graph's hits."""
    whole, union, sizes = whole_and_parts(
        tx, accounts, features, prior, name, overrides, partitions
    )
    assert_frame_equal(union, whole)
    assert max(sizes) < tx.height, (name, sizes, tx.height)
    return whole
