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
from flows87.graph.analysis import edge_table, louvain, pagerank

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
    """Connected groups of eligible accounts; too large ones split into Louvain communities."""
    nodes = sorted(set(eligible))
    keep = set(nodes)
    edges = sorted(
        {(min(a, b), max(a, b)) for a, b, _ in pairs.iter_rows() if a in keep and b in keep}
    )
    g = nx.Graph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    groups: list[list[str]] = []
    for comp in nx.connected_components(g):
        if len(comp) <= settings.max_case_accounts:
            groups.append(sorted(comp))
            continue
        groups.extend(sorted(c) for c in louvain(g.subgraph(comp), seed=87))
    # Louvain visits nodes in a seeded shuffle of the graph's node order and breaks ties by the
    # order of neighbours: sorted nodes and edges make the split depend on the data only. Groups
    # are ordered by their smallest account, which `_attach` uses to break ties.
    return sorted(groups, key=lambda grp: grp[0])


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
    groups = _groups(eligible["account_id"].to_list(), pairs, settings)
    for member, idx in sorted(_attach(groups, pairs, risk_of).items()):
        groups[idx].append(member)
    by_account = {
        k[0]: v
        for k, v in signals.sort("score", descending=True)
        .partition_by("account_id", as_dict=True, maintain_order=True)
        .items()
    }
    edges = edge_table(transactions, [a for g in groups for a in g])
    rows, members = [], []
    for accounts in groups:  # one iteration per case
        ordered = sorted(accounts, key=lambda a: (-risk_of[a], a))
        anchor = ordered[0]
        cid = case_id(anchor)
        sigs = pl.concat([by_account[a] for a in ordered if a in by_account])
        typ = Counter(t for ts in sigs["typologies"].to_list() for t in ts)
        txn_ids = sorted({t for ids in sigs["txn_ids"].to_list() for t in ids})[:MAX_CASE_TXNS]
        risks = [risk_of[a] for a in ordered]
        score = risks[0]  # the case is as strong as its strongest account; size breaks ties
        central = _central(ordered, edges)
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
                "families": sorted(set(sigs["family"].to_list())),
                "signal_ids": sorted(set(sigs["signal_id"].to_list())),
                "n_signals": sigs.height,
                "txn_ids": txn_ids,
                "first_ts": None,  # filled below in one join for all cases
                "last_ts": None,
                "total_amount": 0.0,
                "summary": _summary(ordered, sigs, typ, score, central),
            }
        )
        members.extend({"account_id": a, "case_id": cid} for a in ordered)
    frame = pl.DataFrame(rows, schema=CASE_SCHEMA)
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


def _central(accounts: list[str], edges: pl.DataFrame) -> str | None:
    """The account money converges on inside the case: PageRank by amount on its own transfers."""
    inside = edges.filter(pl.col("src").is_in(accounts) & pl.col("dst").is_in(accounts))
    if len(accounts) < 3 or inside.is_empty():
        return None
    g = nx.DiGraph()
    g.add_weighted_edges_from(inside.select("src", "dst", "sum").iter_rows(), weight="sum")
    ranks = pagerank(g)
    return max(sorted(ranks), key=lambda a: ranks[a])


def _summary(
    ordered: list[str],
    sigs: pl.DataFrame,
    typ: Counter[str],
    score: float,
    central: str | None = None,
) -> str:
    """Plain language an investigator could paste into a suspicious transaction report."""
    kinds = ", ".join(
        f"{_label(t)} ({n} signal{'s' if n > 1 else ''})" for t, n in typ.most_common(3)
    )
    fams = ", ".join(sorted(set(sigs["family"].to_list())))
    head = (
        f"{len(ordered)} account{'s' if len(ordered) > 1 else ''} with {sigs.height} red flags "
        f"({fams})" + (f"; suspected {kinds}" if kinds else "") + f". Risk score {score:.3f}."
    )
    lines = [head]
    if central is not None:
        lines.append(
            f"Money inside the case converges on account {central} (highest PageRank by amount)."
        )
    for account in ordered[:6]:
        texts = sigs.filter(pl.col("account_id") == account).sort("score", descending=True)
        seen: list[str] = []
        for s in texts["summary"].to_list():
            if s not in seen:
                seen.append(s)
        if seen:
            lines.append(f"- {account}: " + " ".join(seen[:4]))
    if len(ordered) > 6:
        lines.append(f"- and {len(ordered) - 6} more accounts.")
    return "\n".join(lines)
