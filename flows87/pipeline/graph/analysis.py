"""Network measures for building and explaining a case, on the small graph of its accounts.

The money graph of a case has one node per account and one edge per (payer, payee) pair with
the count, sum and first/last time of its transfers. PageRank (weighted by amount) points at
accounts money converges on, such as a controller; Louvain communities split a case into rings;
betweenness finds brokers between them. These are whole-graph algorithms, so they run on the
reduced graph of a case's accounts, never on every edge of the run.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
import polars as pl

MAX_EXACT_BETWEENNESS = 2_000
"""Above this many nodes, betweenness is estimated from this many sampled sources."""


def edge_table(
    transactions: pl.DataFrame, accounts: Iterable[str] | None = None, *, touching: bool = False
) -> pl.DataFrame:
    """Transfers aggregated per (src, dst): count, sum, first_ts, last_ts.

    With `accounts`, only transfers between two of them (or, with `touching`, touching any).
    """
    tx = transactions.filter(pl.col("src_account") != pl.col("dst_account"))
    if accounts is not None:
        keep = pl.lit(pl.Series(list(accounts), dtype=pl.String)).implode()
        src_in, dst_in = pl.col("src_account").is_in(keep), pl.col("dst_account").is_in(keep)
        tx = tx.filter((src_in | dst_in) if touching else (src_in & dst_in))
    return (
        tx.group_by(pl.col("src_account").alias("src"), pl.col("dst_account").alias("dst"))
        .agg(
            pl.len().alias("count"),
            pl.col("amount_base").sum().alias("sum"),
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
        )
        .sort("src", "dst")
    )


def money_graph(
    transactions: pl.DataFrame, accounts: Iterable[str] | None = None, *, touching: bool = False
) -> nx.DiGraph:
    """A DiGraph of the accounts' transfers, edges carrying count, sum, first_ts and last_ts."""
    g = nx.DiGraph()
    if accounts is not None:
        g.add_nodes_from(accounts)
    edges = edge_table(transactions, accounts, touching=touching)
    g.add_edges_from(
        (r["src"], r["dst"], {k: r[k] for k in ("count", "sum", "first_ts", "last_ts")})
        for r in edges.iter_rows(named=True)
    )
    return g


def pagerank(g: nx.DiGraph, weight: str | None = "sum") -> dict[str, float]:
    """PageRank by amount: high for accounts that money from many others ends up in."""
    return nx.pagerank(g, weight=weight) if g.number_of_nodes() else {}


def sorted_graph(g: nx.Graph) -> nx.Graph:
    """An undirected copy of `g` with nodes, edges and every node's neighbours in sorted order.

    Louvain visits nodes in a seeded shuffle of the graph's node order and breaks ties by the
    order of each node's neighbours; both follow insertion order, which for a graph built from a
    polars group-by or a set of strings changes from process to process. On the sorted copy the
    seeded result depends on the data only.
    """
    und = nx.Graph()
    und.add_nodes_from(sorted(g.nodes(data=True)))
    edges = g.to_undirected().edges(data=True) if g.is_directed() else g.edges(data=True)
    und.add_edges_from(sorted(((*sorted((u, v)), d) for u, v, d in edges), key=lambda e: e[:2]))
    return und


def louvain(g: nx.Graph, weight: str | None = "weight", seed: int = 0) -> list[set[str]]:
    """Seeded Louvain communities of `g` that do not depend on its insertion order."""
    if g.number_of_nodes() == 0:
        return []
    return nx.community.louvain_communities(sorted_graph(g), weight=weight, seed=seed)


def communities(g: nx.Graph, weight: str | None = "sum", seed: int = 0) -> list[set[str]]:
    """Louvain communities, largest first; seeded, so the same input gives the same split."""
    parts = louvain(g, weight=weight, seed=seed)
    return sorted((set(p) for p in parts), key=lambda p: (-len(p), min(p)))


def betweenness(g: nx.Graph, seed: int = 0) -> dict[str, float]:
    """Betweenness centrality (brokers), sampled on graphs too large for the exact computation."""
    n = g.number_of_nodes()
    k = None if n <= MAX_EXACT_BETWEENNESS else MAX_EXACT_BETWEENNESS
    return nx.betweenness_centrality(g, k=k, seed=seed) if n else {}


def node_table(g: nx.DiGraph, seed: int = 0) -> pl.DataFrame:
    """One row per account: degrees, amount in/out, PageRank, betweenness and community number."""
    nodes = sorted(g.nodes)
    pr, bc = pagerank(g), betweenness(g, seed)
    community = {n: i for i, part in enumerate(communities(g, seed=seed)) for n in part}
    return pl.DataFrame(
        {
            "account_id": nodes,
            "in_degree": [g.in_degree(n) for n in nodes],
            "out_degree": [g.out_degree(n) for n in nodes],
            "in_sum": [float(g.in_degree(n, weight="sum")) for n in nodes],
            "out_sum": [float(g.out_degree(n, weight="sum")) for n in nodes],
            "pagerank": [pr.get(n, 0.0) for n in nodes],
            "betweenness": [bc.get(n, 0.0) for n in nodes],
            "community": [community.get(n, -1) for n in nodes],
        },
        schema={
            "account_id": pl.String,
            "in_degree": pl.Int64,
            "out_degree": pl.Int64,
            "in_sum": pl.Float64,
            "out_sum": pl.Float64,
            "pagerank": pl.Float64,
            "betweenness": pl.Float64,
            "community": pl.Int64,
        },
    )
