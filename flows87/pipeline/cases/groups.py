"""Which eligible accounts form one case: connected groups of a graph whose nodes are the
accounts and the pattern instances that hold them (an instance is one node joined to its
members, never all pairs of them), split where they are too large to review.

Cost: components are linear in the links (scipy); Louvain runs only on components of at most
`max_split_accounts` nodes; a larger component is split by pattern instance instead (each
account with its largest instance), which is linear too. Nothing here grows with the square of
an instance's size, so a fan-in of 200,000 senders costs what 200,000 signals cost.
"""

from __future__ import annotations

import networkx as nx
import polars as pl

from flows87.pipeline.cases.scoring import Links, ScoringSettings
from flows87.pipeline.graph.common import components

INSTANCE = "\x1finstance:"
"""Prefix of instance nodes, so they never clash with an account id."""


def group_accounts(
    eligible: list[str], links: Links, settings: ScoringSettings
) -> tuple[list[list[str]], list[str]]:
    """Groups of eligible accounts (each sorted, ordered by their first account) and warnings
    about components too large to split by communities."""
    nodes = sorted(set(eligible))
    keep = pl.Series(nodes, dtype=pl.String).implode()
    membership = links.members.filter(pl.col("account_id").is_in(keep)).select(
        (pl.lit(INSTANCE) + pl.col("instance")).alias("u"), pl.col("account_id").alias("v")
    )
    transfers = links.transfers.filter(pl.col("a").is_in(keep) & pl.col("b").is_in(keep)).select(
        pl.col("a").alias("u"), pl.col("b").alias("v")
    )
    edges = pl.concat([membership, transfers]).unique().sort("u", "v")
    labelled = (
        components(edges)
        if edges.height
        else pl.DataFrame(schema={"node": pl.String, "component": pl.Int64})
    )
    comp = (
        pl.DataFrame({"account_id": nodes}, schema={"account_id": pl.String})
        .join(labelled.rename({"node": "account_id"}), on="account_id", how="left")
        .with_columns(
            # a lone account is a component of its own
            pl.col("component").fill_null(-1 - pl.int_range(pl.len(), dtype=pl.Int64))
        )
    )
    sizes = comp.group_by("component").agg(pl.col("account_id").sort().alias("accounts"))
    groups: list[list[str]] = []
    warnings: list[str] = []
    large: list[list[str]] = []
    for accounts in sizes["accounts"].to_list():
        (groups if len(accounts) <= settings.max_case_accounts else large).append(accounts)
    by_component = _edges_by_component(edges, labelled, large)
    for accounts in large:
        sub = by_component[accounts[0]]
        n_nodes = len(accounts) + sub.filter(pl.col("u").str.starts_with(INSTANCE))["u"].n_unique()
        if n_nodes <= settings.max_split_accounts:
            community = _louvain(sub)
        else:
            community = {}
            warnings.append(
                f"a linked group of {len(accounts):,} accounts is too large for community "
                f"splitting (over {settings.max_split_accounts:,} nodes): its accounts were "
                "grouped by their largest pattern instance"
            )
        groups.extend(_by_instance(accounts, sub, community))
    return sorted(groups, key=lambda g: g[0]), warnings


def _edges_by_component(
    edges: pl.DataFrame, labelled: pl.DataFrame, large: list[list[str]]
) -> dict[str, pl.DataFrame]:
    """The edges of each large component, keyed by its first account: one join and one split."""
    if not large:
        return {}
    first = pl.DataFrame({"node": [g[0] for g in large]}).join(labelled, on="node")
    tagged = edges.join(labelled.rename({"node": "u"}), on="u").join(
        first.rename({"node": "key"}), on="component"
    )
    return {
        str(key): part.drop("component")
        for (key,), part in tagged.partition_by("key", as_dict=True, include_key=False).items()
    }


def _louvain(edges: pl.DataFrame) -> dict[str, int]:
    """node -> community, seeded, on sorted nodes and edges so the split depends on the data only."""
    g = nx.Graph()
    g.add_nodes_from(sorted(set(edges["u"].to_list()) | set(edges["v"].to_list())))
    g.add_edges_from(zip(edges["u"].to_list(), edges["v"].to_list(), strict=True))
    found = nx.community.louvain_communities(g, seed=87)
    return {n: i for i, c in enumerate(sorted(found, key=min)) for n in c}


def _by_instance(
    accounts: list[str], edges: pl.DataFrame, community: dict[str, int]
) -> list[list[str]]:
    """Split one large component: an account goes with its largest pattern instance (so an
    instance is never cut in two: a 100,000-hop chain stays one case), the others with their
    Louvain community, or without one with the accounts they are linked to by transfers."""
    members = edges.filter(pl.col("u").str.starts_with(INSTANCE)).rename(
        {"u": "instance", "v": "account_id"}
    )
    largest = (
        members.with_columns(pl.len().over("instance").alias("size"))
        .sort(["account_id", "size", "instance"], descending=[False, True, False])
        .unique("account_id", keep="first", maintain_order=True)
        .select("account_id", "instance")
    )
    if community:
        key_of = {a: f"c{community[a]}" for a in accounts}
        for a, inst in largest.iter_rows():
            key_of[a] = f"c{community[inst]}"
    else:
        key_of = dict(largest.iter_rows())
        loose = [a for a in accounts if a not in key_of]
        if loose:
            rest = edges.filter(
                ~pl.col("u").str.starts_with(INSTANCE)
                & pl.col("u").is_in(pl.Series(loose).implode())
                & pl.col("v").is_in(pl.Series(loose).implode())
            )
            labels = dict(components(rest).iter_rows()) if rest.height else {}
            for a in loose:
                key_of[a] = f"t{labels[a]}" if a in labels else f"a{a}"
    out: dict[str, list[str]] = {}
    for a in accounts:  # sorted, so each group's accounts are too
        out.setdefault(key_of[a], []).append(a)
    return list(out.values())
