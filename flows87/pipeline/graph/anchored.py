"""Patterns found a partition at a time: each instance belongs to one key (its anchor: a fan's
hub account, a party, a cash machine), and the instances anchored in a partition need only the
transactions near its keys (`Anchored.reach`), not the whole graph.

A partition's task reads those rows, runs the pattern unchanged on them and keeps the instances
whose anchor falls in the partition (the keys' hash, as accounts are partitioned:
stages/parts.py); the union over the partitions equals the pattern's hits on the whole graph
(tests/graph/test_anchored.py checks every pattern here against the whole run). A pattern
belongs here only when that holds: its instance for an anchor depends on the anchor's reach
alone, never on other instances (a budget shared by all instances) or on a statistic of the
whole graph, unless that statistic is computed on the whole graph first (`Anchored.prime`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from flows87.pipeline.graph.context import TRANSFER, GraphContext, infrastructure_of, population
from flows87.pipeline.stages.parts import HASH_SEED


@dataclass(frozen=True)
class Partition:
    """One of `count` partitions of any key (account, party, location...): a key's partition is
    its hash modulo the count, as accounts' are (stages/parts.assign)."""

    part: int
    count: int

    def has(self, key: str | pl.Expr) -> pl.Expr:
        """True where the key (a text column or expression) belongs to this partition; null
        keys belong to none."""
        expr = pl.col(key) if isinstance(key, str) else key
        return (expr.hash(HASH_SEED) % self.count == self.part) & expr.is_not_null()


Reach = Callable[[pl.LazyFrame, pl.DataFrame, Partition], pl.Expr]
"""(every transaction, the accounts, the partition) -> which transactions its anchors may read."""

Anchor = Callable[[pl.DataFrame], pl.DataFrame]
"""A pattern's hits -> instance, key: the key each instance is anchored at (one per instance)."""

Prime = Callable[[pl.LazyFrame, GraphContext, dict[str, float]], None]
"""(every transaction, a partition's context, the pattern's parameters): memoise on the context
the tables its pattern derives from the whole graph (`GraphContext.memo`), before it runs."""


def incident(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Expr:
    """The transactions to or from one of the partition's accounts (their whole history, cash
    legs too)."""
    return p.has("src_account") | p.has("dst_account")


def counterparties(tx: pl.LazyFrame, accounts: pl.DataFrame, p: Partition) -> pl.Series:
    """The partition's accounts that transact, and every account that paid them or that they
    paid: the second hop of a reach."""
    near = tx.filter(incident(tx, accounts, p))
    return (
        pl.concat(
            [
                near.select(pl.col("src_account").alias("a")),
                near.select(pl.col("dst_account").alias("a")),
            ]
        )
        .drop_nulls()
        .unique()
        .collect(engine="streaming")
        .get_column("a")
    )


def whole_infrastructure(tx: pl.LazyFrame, ctx: GraphContext, values: dict[str, float]) -> None:
    """A `Prime` for patterns that leave out `context.infrastructure(ctx, max_hub_share)`: the
    accounts trading with a share of the whole population, found on every transaction (a
    partition sees only some of a processor's counterparties)."""
    share = values["max_hub_share"]
    t = tx.filter(TRANSFER).select(
        pl.col("src_account").alias("src"), pl.col("dst_account").alias("dst")
    )
    table = infrastructure_of(t, population(ctx), share)
    ctx.memo(f"infrastructure:{share}", lambda: table)


def by_role(role: str) -> Anchor:
    """Instances anchored at the account in `role` (a fan's hub)."""

    def anchor(hits: pl.DataFrame) -> pl.DataFrame:
        return hits.filter(pl.col("role") == role).select(
            "instance", pl.col("account_id").alias("key")
        )

    return anchor


@dataclass(frozen=True)
class Anchored:
    """How a pattern is found a partition at a time."""

    anchor: Anchor
    reach: Reach = incident
    prime: Prime | None = None
    shared_prime: bool = True
    """The prime reads nothing of the partition's context but its accounts, features and
    signals (every partition's are the run's): computed once per run (stages/graph_groups
    `graph_prime`), not in every partition. False when it starts from the partition's rows."""
    once: bool = False
    """Its instances are found on its primed tables alone (its reach reads no rows), the same
    in every partition: the first partition finds and keeps them all (`finds`), the others none,
    instead of each finding all of them to keep a share."""

    def finds(self, p: Partition | None) -> bool:
        """Whether partition `p` looks for this pattern's instances at all."""
        return p is None or not self.once or p.part == 0


@dataclass(frozen=True)
class Linked:
    """How a pattern whose instances span partitions is found from pieces each partition finds:
    `pieces(ctx, params, partition)` the pieces of the partition's accounts (None: of every
    account) on the transactions of `reach`, and `join(pieces, params, transfers)` the
    instances from every partition's pieces (in any order) and the run's count of
    account-to-account transfers. The pieces are a table far smaller than the transactions
    (layering: the pass-through links, graph/layering.py)."""

    pieces: Callable[[GraphContext, dict[str, float], Partition | None], pl.DataFrame]
    join: Callable[[pl.DataFrame, dict[str, float], int], pl.DataFrame]
    reach: Reach = incident


def anchored_in(hits: pl.DataFrame, spec: Anchored, p: Partition | None) -> pl.DataFrame:
    """The hits of the instances anchored in `p` (all of them when p is None, and for a pattern
    found `once`, by the partition that finds it)."""
    if p is None or hits.is_empty():
        return hits
    if spec.once:
        return hits if spec.finds(p) else hits.head(0)
    mine = spec.anchor(hits).filter(p.has("key")).select("instance").unique()
    return hits.join(mine, on="instance", how="semi", maintain_order="left")
