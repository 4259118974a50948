"""Group flagged accounts into ranked, explained cases.

Accounts eligible for a case are linked when they moved money to each other or appear in the
same graph pattern; each connected group is a case (groups too large to review are split into
Louvain communities). A case's id comes from its anchor account (the riskiest), so a re-run of
the same data, or a later run that sees the same scheme again, gives the same id.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import networkx as nx
import polars as pl

from flows87.cases.scoring import ScoringSettings
from flows87.graph.analysis import edge_table, pagerank
from flows87.graph.common import components

MAX_CASE_TXNS = 2000

CASE_SCHEMA = pl.Schema(
    {
        "case_id": pl.String(),
        "rank": pl.Int64(),
        "risk_score": pl.Float64(),
        "anchor_account": pl.String(),
        "central_account": pl.String(),
        "accounts": pl.List(pl.String()),
        "n_accounts": pl.Int64(),
        "typologies": pl.List(pl.String()),
        "families": pl.List(pl.String()),
        "signal_ids": pl.List(pl.String()),
        "n_signals": pl.Int64(),
        "txn_ids": pl.List(pl.String()),
        "first_ts": pl.Datetime("us", "UTC"),
        "last_ts": pl.Datetime("us", "UTC"),
        "total_amount": pl.Float64(),
        "summary": pl.String(),
    }
)


@dataclass
class Cases:
    cases: pl.DataFrame  # CASE_SCHEMA
    membership: pl.DataFrame  # account_id, case_id


def case_id(anchor: str) -> str:
    return "C-" + hashlib.sha1(anchor.encode("utf-8")).hexdigest()[:12]


def _groups(eligible: list[str], pairs: pl.DataFrame, settings: ScoringSettings) -> list[list[str]]:
    """Connected groups of eligible accounts; too large ones split into Louvain communities.

    The components come from scipy (`graph.common.components`; networkx needs seconds to build
    a graph of 300k pattern pairs); only a component too large to review becomes a networkx
    graph."""
    nodes = sorted(set(eligible))
    keep = pl.Series(nodes, dtype=pl.String).implode()
    inside = (
        pairs.filter(pl.col("a").is_in(keep) & pl.col("b").is_in(keep))
        .select(pl.min_horizontal("a", "b").alias("a"), pl.max_horizontal("a", "b").alias("b"))
        .unique()
        .sort("a", "b")
    )  # each edge once as (a, b), a <= b, sorted
    linked = components(inside.select(pl.col("a").alias("u"), pl.col("b").alias("v")))
    component_of = dict(zip(linked["node"].to_list(), linked["component"].to_list(), strict=True))
    members: dict[int | str, list[str]] = {}
    for account in nodes:  # sorted, so each group's accounts are too
        members.setdefault(component_of.get(account, account), []).append(account)
    edges = list(zip(inside["a"].to_list(), inside["b"].to_list(), strict=True))
    groups: list[list[str]] = []
    for comp in members.values():
        if len(comp) <= settings.max_case_accounts:
            groups.append(comp)
            continue
        groups.extend(sorted(c) for c in _louvain_split(set(comp), edges))
    # Louvain visits nodes in a seeded shuffle of the graph's node order and breaks ties by the
    # order of neighbours: sorted nodes and edges make the split depend on the data only. Groups
    # are ordered by their smallest account, which `_attach` uses to break ties.
    return sorted(groups, key=lambda grp: grp[0])


def _louvain_split(comp: set[str], edges: list[tuple[str, str]]) -> list[set[str]]:
    """`graph.analysis.louvain(g.subgraph(comp), seed=87)` without its copy of the subgraph.

    `louvain` runs on `sorted_graph` of its input: nodes in sorted order, then the edges as
    sorted (u, v) pairs with u <= v, in sorted order. `edges` is already that list for the whole
    graph, and a component holds both ends of its edges or neither, so building the component's
    graph from it directly gives the same graph (same node and neighbour order, hence the same
    seeded communities) without sorting a large component's edges, with their data, again.
    """
    sub = nx.Graph()
    sub.add_nodes_from(sorted(comp))
    sub.add_edges_from(e for e in edges if e[0] in comp)
    return nx.community.louvain_communities(sub, weight="weight", seed=87)


def _attach(
    groups: list[list[str]], pairs: pl.DataFrame, risk_of: dict[str, float]
) -> dict[str, int]:
    """Accounts not eligible themselves but in the same pattern as a case's account join that case.

    The spokes of a fan-in or the intermediaries of a scatter-gather carry one network signal
    each; on their own they are not a case, but an investigator of the hub needs them.
    """
    group_of = {a: i for i, g in enumerate(groups) for a in g}
    best: dict[str, tuple[float, int]] = {}
    for a, b, _kind in pairs.filter(pl.col("kind") == "pattern").iter_rows():
        for member, other in ((a, b), (b, a)):
            if member in group_of or other not in group_of:
                continue
            cand = (risk_of[other], -group_of[other])
            if member not in best or cand > best[member]:
                best[member] = cand
    return {m: -idx for m, (_, idx) in best.items()}


def _label(typology: str) -> str:
    return typology.replace("_", " ")


def build(
    risk: pl.DataFrame,
    signals: pl.DataFrame,
    pairs: pl.DataFrame,
    transactions: pl.DataFrame,
    settings: ScoringSettings,
) -> Cases:
    eligible = risk.filter(pl.col("eligible"))
    if eligible.is_empty():
        return Cases(
            pl.DataFrame(schema=CASE_SCHEMA),
            pl.DataFrame(schema={"account_id": pl.String, "case_id": pl.String}),
        )
    risk_of = dict(zip(risk["account_id"], risk["risk_score"], strict=True))
    signals_of = dict(zip(risk["account_id"], risk["n_signals"], strict=True))
    groups = _groups(eligible["account_id"].to_list(), pairs, settings)
    for member, idx in sorted(_attach(groups, pairs, risk_of).items()):
        groups[idx].append(member)
    # each account's signals, strongest first (the order summaries and typology ties follow;
    # equally strong ones in the signals file's order, which gate_signals makes total), as plain
    # lists: one pass over the signals instead of polars operations per case and account
    ranked = (
        signals.with_row_index("_pos")
        .sort(["score", "_pos"], descending=[True, False])
        .select("account_id", "typologies", "family", "signal_id", "summary")
    )
    by_account: dict[str, list[int]] = {}
    for i, a in enumerate(ranked["account_id"].to_list()):
        by_account.setdefault(a, []).append(i)
    sig_typ = ranked["typologies"].to_list()
    sig_family = ranked["family"].to_list()
    sig_id = ranked["signal_id"].to_list()
    sig_summary = ranked["summary"].to_list()
    edges = edge_table(transactions, [a for g in groups for a in g])
    inside = _edges_by_group(groups, edges)
    rows, members = [], []
    for gi, accounts in enumerate(groups):  # one iteration per case
        # riskiest first; of equally risky accounts the one with more red flags anchors the case
        ordered = sorted(accounts, key=lambda a: (-risk_of[a], -signals_of.get(a, 0), a))
        anchor = ordered[0]
        cid = case_id(anchor)
        idx = [i for a in ordered for i in by_account.get(a, ())]
        typ = Counter(t for i in idx for t in sig_typ[i])
        families = sorted({sig_family[i] for i in idx})
        risks = [risk_of[a] for a in ordered]
        score = risks[0]  # the case is as strong as its strongest account; size breaks ties
        central = _central(ordered, inside.get(gi, []))
        texts = {a: [sig_summary[i] for i in by_account[a]] for a in ordered[:6] if a in by_account}
        rows.append(
            {
                "case_id": cid,
                "rank": 0,
                "risk_score": round(score, 4),
                "anchor_account": anchor,
                "central_account": central,
                "accounts": ordered,
                "n_accounts": len(ordered),
                "typologies": [t for t, _ in typ.most_common()],
                "families": families,
                "signal_ids": sorted({sig_id[i] for i in idx}),
                "n_signals": len(idx),
                "txn_ids": [],  # filled below in one pass for all cases
                "first_ts": None,  # filled below in one join for all cases
                "last_ts": None,
                "total_amount": 0.0,
                "summary": _summary(ordered, len(idx), families, typ, score, central, texts),
            }
        )
        members.extend({"account_id": a, "case_id": cid} for a in ordered)
    frame = pl.DataFrame(rows, schema=CASE_SCHEMA)
    membership_all = pl.DataFrame(members, schema={"account_id": pl.String, "case_id": pl.String})
    case_txns = (
        membership_all.join(signals.select("account_id", "txn_ids"), on="account_id")
        .explode("txn_ids")
        .drop_nulls("txn_ids")
        .select("case_id", "txn_ids")
        .unique()
        .sort("case_id", "txn_ids")
        .group_by("case_id", maintain_order=True)
        .agg(pl.col("txn_ids").head(MAX_CASE_TXNS))
    )
    frame = (
        frame.drop("txn_ids")
        .join(case_txns, on="case_id", how="left", maintain_order="left")
        .with_columns(pl.col("txn_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .select(list(CASE_SCHEMA.names()))
    )
    spans = (
        frame.select("case_id", "txn_ids")
        .explode("txn_ids")
        .join(
            transactions.select(pl.col("txn_id").alias("txn_ids"), "ts", "amount_base"),
            on="txn_ids",
        )
        .group_by("case_id")
        .agg(
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
            pl.col("amount_base").sum().round(2).alias("total_amount"),
        )
    )
    cases = (
        frame.drop("first_ts", "last_ts", "total_amount")
        .join(spans, on="case_id", how="left")
        .with_columns(pl.col("total_amount").fill_null(0.0))
        .select(list(CASE_SCHEMA.names()))
        .sort(["risk_score", "n_accounts", "case_id"], descending=[True, True, False])
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"))
    )
    if settings.max_cases:
        cases = cases.head(settings.max_cases)
    membership = pl.DataFrame(members, schema={"account_id": pl.String, "case_id": pl.String})
    membership = membership.join(cases.select("case_id"), on="case_id", how="semi")
    return Cases(cases, membership)


def _edges_by_group(
    groups: list[list[str]], edges: pl.DataFrame
) -> dict[int, list[tuple[str, str, float]]]:
    """Each group's own transfers (both ends in the group) as (src, dst, sum), in `edges'`
    (src, dst) order.

    A group with fewer than three accounts never needs them (see `_central`)."""
    group_of = pl.DataFrame(
        [(a, i) for i, g in enumerate(groups) if len(g) >= 3 for a in g],
        schema={"account": pl.String, "group": pl.Int64},
        orient="row",
    )
    inside = (
        edges.select("src", "dst", "sum")
        .join(group_of.rename({"account": "src"}), on="src", maintain_order="left")
        .join(
            group_of.rename({"account": "dst", "group": "dst_group"}),
            on="dst",
            maintain_order="left",
        )
        .filter(pl.col("group") == pl.col("dst_group"))
    )
    out: dict[int, list[tuple[str, str, float]]] = {}
    for src, dst, amount, group in inside.select("src", "dst", "sum", "group").iter_rows():
        out.setdefault(group, []).append((src, dst, amount))
    return out


def _central(accounts: list[str], inside: list[tuple[str, str, float]]) -> str | None:
    """The account money converges on inside the case: PageRank by amount on its own transfers."""
    if len(accounts) < 3 or not inside:
        return None
    g = nx.DiGraph()
    g.add_weighted_edges_from(inside, weight="sum")
    ranks = pagerank(g)
    return max(sorted(ranks), key=lambda a: ranks[a])


def _summary(
    ordered: list[str],
    n_signals: int,
    families: list[str],
    typ: Counter[str],
    score: float,
    central: str | None,
    texts: dict[str, list[str]],
) -> str:
    """Plain language an investigator could paste into a suspicious transaction report.

    `texts` holds the summaries of the first accounts' signals, strongest first."""
    kinds = ", ".join(
        f"{_label(t)} ({n} signal{'s' if n > 1 else ''})" for t, n in typ.most_common(3)
    )
    fams = ", ".join(families)
    head = (
        f"{len(ordered)} account{'s' if len(ordered) > 1 else ''} with {n_signals} red flags "
        f"({fams})" + (f"; suspected {kinds}" if kinds else "") + f". Risk score {score:.3f}."
    )
    lines = [head]
    if central is not None:
        lines.append(
            f"Money inside the case converges on account {central} (highest PageRank by amount)."
        )
    for account in ordered[:6]:
        seen: list[str] = []
        for s in texts.get(account, []):
            if s not in seen:
                seen.append(s)
        if seen:
            lines.append(f"- {account}: " + " ".join(seen[:4]))
    if len(ordered) > 6:
        lines.append(f"- and {len(ordered) - 6} more accounts.")
    return "\n".join(lines)
