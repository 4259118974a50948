"""Patterns found a partition of accounts at a time: each instance belongs to one account (its
anchor: a fan's hub, a funnel's collector), and the instances anchored in a partition need only
the transactions near its accounts (`Anchored.reach`), not the whole graph.

A partition's task reads those rows, runs the pattern unchanged on them and keeps the instances
whose anchor is one of its accounts; the union over the partitions equals the pattern's hits on
the whole graph (tests/graph/test_anchored.py checks every pattern here against the whole run).
A pattern belongs here only when that holds: its instance for an anchor depends on the anchor's
reach alone, never on other instances (a budget shared by all instances) or on a statistic of the
whole graph, unless that statistic is computed on the whole graph first (`Anchored.prime`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from flows87.pipeline.graph.context import GraphContext

Reach = Callable[[pl.LazyFrame, pl.Series], pl.Expr]
"""(every transaction, the partition's accounts) -> which transactions its anchors may read."""

Prime = Callable[[pl.LazyFrame, GraphContext, dict[str, float]], None]
"""(every transaction, a partition's context, the pattern's parameters): memoise on the context
the tables its pattern derives from the whole graph (`GraphContext.memo`), before it runs."""


def incident(tx: pl.LazyFrame, ids: pl.Series) -> pl.Expr:
    """The transactions to or from one of `ids` (an account's whole history, cash legs too)."""
    wanted = ids.implode()
    return pl.col("src_account").is_in(wanted) | pl.col("dst_account").is_in(wanted)


def counterparties(tx: pl.LazyFrame, ids: pl.Series) -> pl.Series:
    """`ids` and every account that paid them or that they paid: the second hop of a reach."""
    near = tx.filter(incident(tx, ids))
    return (
        pl.concat(
            [
                near.select(pl.col("src_account").alias("a")),
                near.select(pl.col("dst_account").alias("a")),
                pl.LazyFrame({"a": ids}),
            ]
        )
        .drop_nulls()
        .unique()
        .collect(engine="streaming")
        .get_column("a")
    )


@dataclass(frozen=True)
class Anchored:
    """How a pattern is found a partition at a time."""

    role: str
    """The hit role whose account anchors an instance (each instance has one)."""
    reach: Reach = incident
    prime: Prime | None = None


def anchors(hits: pl.DataFrame, role: str) -> pl.DataFrame:
    """instance -> its anchor account (the account in `role`)."""
    return hits.filter(pl.col("role") == role).select("instance", pl.col("account_id").alias("a"))


def anchored_in(hits: pl.DataFrame, role: str, ids: pl.Series | None) -> pl.DataFrame:
    """The hits of the instances anchored at one of `ids` (all of them when ids is None)."""
    if ids is None or hits.is_empty():
        return hits
    mine = anchors(hits, role).filter(pl.col("a").is_in(ids.implode())).select("instance")
    return hits.join(mine.unique(), on="instance", how="semi", maintain_order="left")
