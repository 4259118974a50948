"""Group flagged accounts into ranked, explained cases.

Accounts eligible for a case are linked when they moved money to each other or appear in the
same graph pattern; each connected group is a case (flows87/pipeline/cases/groups.py splits groups too
large to review). A case names at most `max_case_accounts` accounts, its riskiest; the others
of its group are listed as linked (`linked_accounts`), so a 100,000-hop chain is one case an
investigator can read, with nothing left out. A case's id comes from its anchor account (the
riskiest), so a re-run of the same data, or a later run that sees the same scheme again, gives
the same id. A case's risk adds up the evidence of its accounts (case_score.py): how many are
flagged, in how many independent families, how strong the strongest is and how much money
moved; `risk_reason` says so in one sentence.

Cost: linear in signals, links and transactions, plus one PageRank per case on at most
`max_case_accounts` accounts.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx
import polars as pl

from flows87.pipeline.cases.case_score import (
    INDEPENDENT,
    CaseEvidence,
    money_reference,
    signal_name,
)
from flows87.pipeline.cases.groups import group_accounts
from flows87.pipeline.cases.scoring import Links, ScoringSettings
from flows87.pipeline.graph.analysis import edge_table, pagerank

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
        "n_linked": pl.Int64(),
        "linked_accounts": pl.List(pl.String()),
        "risk_accounts": pl.Int64(),
        "risk_families": pl.Int64(),
        "risk_strongest": pl.Float64(),
        "risk_money": pl.Float64(),
        "risk_evidence": pl.Float64(),
        "risk_reason": pl.String(),
    }
)

MEMBERSHIP_SCHEMA = pl.Schema({"account_id": pl.String(), "case_id": pl.String()})


@dataclass
class Cases:
    cases: pl.DataFrame  # CASE_SCHEMA
    membership: pl.DataFrame  # account_id, case_id: the accounts a case names
    linked: pl.DataFrame  # account_id, case_id: the accounts it lists as linked (over the cap)
    warnings: list[str]


def case_id(anchor: str) -> str:
    return "C-" + hashlib.sha1(anchor.encode("utf-8")).hexdigest()[:12]


def _attach(groups: list[list[str]], members: pl.DataFrame, risk: pl.DataFrame) -> pl.DataFrame:
    """account_id -> group for accounts not eligible themselves but in a pattern instance with a
    case's account: the group of the instance's riskiest grouped account (the smaller group on
    ties). The spokes of a fan-in or the intermediaries of a scatter-gather carry one network
    signal each; on their own they are not a case, but an investigator of the hub needs them.
    O(M log M) for M instance memberships."""
    group_of = pl.DataFrame(
        [(a, i) for i, g in enumerate(groups) for a in g],
        schema={"account_id": pl.String, "group": pl.Int64},
        orient="row",
    ).join(risk.select("account_id", "risk_score"), on="account_id", how="left")
    best = (
        members.join(group_of, on="account_id")
        .sort(["instance", "risk_score", "group"], descending=[False, True, False])
        .unique("instance", keep="first", maintain_order=True)
        .select("instance", "group", "risk_score")
    )
    return (
        members.join(group_of, on="account_id", how="anti")
        .join(best, on="instance")
        .sort(["account_id", "risk_score", "group"], descending=[False, True, False])
        .unique("account_id", keep="first", maintain_order=True)
        .select("account_id", "group")
    )


def _label(typology: str) -> str:
    return typology.replace("_", " ")


def _evidence_of(risk: pl.DataFrame) -> dict[str, float]:
    """account_id -> -ln(1 - risk): account_risk's `evidence`, or derived from risk_score."""
    if "evidence" in risk.columns:
        return dict(zip(risk["account_id"], risk["evidence"], strict=True))
    return {
        a: -math.log(max(1.0 - r, 1e-16))
        for a, r in zip(risk["account_id"], risk["risk_score"], strict=True)
    }


def build(
    risk: pl.DataFrame,
    signals: pl.DataFrame,
    links: Links,
    transactions: pl.DataFrame | pl.LazyFrame,
    settings: ScoringSettings,
    currency: str = "",
    reference: float | None = None,
) -> Cases:
    """Cases of the eligible accounts in `risk`, ranked by their case score; `currency` names
    the unit of amount_base in each case's `risk_reason`; `reference` is `money_reference` of
    the transactions, computed here when not given.

    Transactions given lazily (a file's scan) are read only where the cases need them: the
    transfers between their accounts and their evidence transactions."""
    eligible = risk.filter(pl.col("eligible"))
    if eligible.is_empty():
        none = pl.DataFrame(schema=MEMBERSHIP_SCHEMA)
        return Cases(pl.DataFrame(schema=CASE_SCHEMA), none, none, [])
    risk_of = dict(zip(risk["account_id"], risk["risk_score"], strict=True))
    signals_of = dict(zip(risk["account_id"], risk["n_signals"], strict=True))
    evidence_of = _evidence_of(risk)
    flagged = set(eligible["account_id"].to_list())
    groups, warnings = group_accounts(eligible["account_id"].to_list(), links, settings)
    for member, idx in _attach(groups, links.members, risk).sort("account_id").iter_rows():
        groups[idx].append(member)
    named: list[list[str]] = []
    over: list[list[str]] = []
    for accounts in groups:
        # riskiest first; of equally risky accounts the one with more red flags anchors the case
        ordered = sorted(accounts, key=lambda a: (-risk_of.get(a, 0.0), -signals_of.get(a, 0), a))
        named.append(ordered[: settings.max_case_accounts])
        over.append(sorted(ordered[settings.max_case_accounts :]))
    groups = named
    # each account's signals, strongest first (the order summaries and typology ties follow;
    # equally strong ones in the signals file's order, which gate_signals makes total), as plain
    # lists: one pass over the signals instead of polars operations per case and account
    ranked = (
        signals.with_row_index("_pos")
        .sort(["score", "_pos"], descending=[True, False])
        .select("account_id", "typologies", "family", "signal_id", "summary", "source")
    )
    by_account: dict[str, list[int]] = {}
    for i, a in enumerate(ranked["account_id"].to_list()):
        by_account.setdefault(a, []).append(i)
    sig_typ = ranked["typologies"].to_list()
    sig_family = ranked["family"].to_list()
    sig_id = ranked["signal_id"].to_list()
    sig_summary = ranked["summary"].to_list()
    sig_source = ranked["source"].to_list()
    in_cases = [a for g in groups for a in g]
    edges = edge_table(_between(transactions, in_cases), in_cases)
    inside = _edges_by_group(groups, edges)
    rows: list[dict[str, Any]] = []
    members: list[dict[str, str]] = []
    linked: list[dict[str, str]] = []
    parts: dict[str, CaseEvidence] = {}
    texts_of: dict[str, tuple[Any, ...]] = {}
    for gi, ordered in enumerate(groups):  # one iteration per case
        anchor = ordered[0]
        cid = case_id(anchor)
        idx = [i for a in ordered for i in by_account.get(a, ())]
        typ = Counter(t for i in idx for t in sig_typ[i])
        families = sorted({sig_family[i] for i in idx})
        # the strongest account by evidence: risk_score ties at 1.0 where evidence does not
        strongest = max(ordered, key=lambda a: (evidence_of.get(a, 0.0), a == anchor))
        names = [signal_name(sig_id[i], sig_source[i]) for i in by_account.get(strongest, ())]
        parts[cid] = CaseEvidence(
            n_flagged=sum(a in flagged for a in ordered) + sum(a in flagged for a in over[gi]),
            families=tuple(f for f in families if f in INDEPENDENT),
            strongest_risk=risk_of.get(strongest, 0.0),
            strongest_evidence=evidence_of.get(strongest, 0.0),
            strongest_signals=tuple(dict.fromkeys(names)),
            moved=0.0,  # known once the case's transactions are
            money_ratio=0.0,
        )
        central = _central(ordered, inside.get(gi, []))
        texts = {a: [sig_summary[i] for i in by_account[a]] for a in ordered[:6] if a in by_account}
        texts_of[cid] = (ordered, len(idx), families, typ, central, texts, len(over[gi]))
        rows.append(
            {
                "case_id": cid,
                "rank": 0,
                "risk_score": 0.0,  # filled below, with the money
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
                "summary": "",
                "n_linked": len(over[gi]),
                "linked_accounts": over[gi],
            }
        )
        members.extend({"account_id": a, "case_id": cid} for a in ordered)
        linked.extend({"account_id": a, "case_id": cid} for a in over[gi])
    frame = pl.DataFrame(rows, schema=CASE_SCHEMA)
    membership_all = pl.DataFrame(members, schema=MEMBERSHIP_SCHEMA)
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
            _evidence(transactions, frame["txn_ids"]).select(
                pl.col("txn_id").alias("txn_ids"), "ts", "amount_base"
            ),
            on="txn_ids",
        )
        .group_by("case_id")
        .agg(
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
            pl.col("amount_base").sum().round(2).alias("total_amount"),
        )
    )
    frame = (
        frame.drop("first_ts", "last_ts", "total_amount")
        .join(spans, on="case_id", how="left")
        .with_columns(pl.col("total_amount").fill_null(0.0))
    )
    if reference is None:
        reference = money_reference(_held(transactions))
    scores = _scores(frame, parts, texts_of, reference, settings, currency)
    cases = (
        frame.drop(*(c for c in scores.columns if c != "case_id"))
        .join(scores, on="case_id", how="left")
        .select(list(CASE_SCHEMA.names()))
        .sort(
            ["risk_score", "risk_evidence", "n_accounts", "case_id"],
            descending=[True, True, True, False],
        )
        .with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"))
    )
    if settings.max_cases:
        cases = cases.head(settings.max_cases)
    membership = pl.DataFrame(members, schema=MEMBERSHIP_SCHEMA)
    membership = membership.join(cases.select("case_id"), on="case_id", how="semi")
    linked_frame = pl.DataFrame(linked, schema=MEMBERSHIP_SCHEMA)
    linked_frame = linked_frame.join(cases.select("case_id"), on="case_id", how="semi")
    return Cases(cases, membership, linked_frame, warnings)


def _held(transactions: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return transactions if isinstance(transactions, pl.DataFrame) else transactions.collect()


def _between(transactions: pl.DataFrame | pl.LazyFrame, accounts: list[str]) -> pl.DataFrame:
    """The transfers between two of `accounts` (what `edge_table` keeps), in file order; held
    transactions are passed whole, as edge_table filters them itself."""
    if isinstance(transactions, pl.DataFrame):
        return transactions
    keep = pl.Series(accounts, dtype=pl.String).implode()
    return (
        transactions.filter(
            pl.col("src_account").is_in(keep)
            & pl.col("dst_account").is_in(keep)
            & (pl.col("src_account") != pl.col("dst_account"))
        )
        .select("src_account", "dst_account", "ts", "amount_base")
        .collect(engine="streaming")
    )


def _evidence(transactions: pl.DataFrame | pl.LazyFrame, txn_ids: pl.Series) -> pl.DataFrame:
    """The cases' evidence transactions (txn_id, ts, amount_base), in file order."""
    if isinstance(transactions, pl.DataFrame):
        return transactions
    keep = txn_ids.explode().drop_nulls().unique().implode()
    return (
        transactions.filter(pl.col("txn_id").is_in(keep))
        .select("txn_id", "ts", "amount_base")
        .collect(engine="streaming")
    )


def _scores(
    frame: pl.DataFrame,
    parts: dict[str, CaseEvidence],
    texts_of: dict[str, tuple[Any, ...]],
    reference: float,
    settings: ScoringSettings,
    currency: str,
) -> pl.DataFrame:
    """case_id, risk_score, the risk_* parts and the summary, once each case's money is known."""
    out: list[dict[str, Any]] = []
    for cid, moved in frame.select("case_id", "total_amount").iter_rows():
        ev = replace(parts[cid], moved=moved, money_ratio=moved / reference)
        score = ev.score(settings.case_score)
        ordered, n_signals, families, typ, central, texts, n_linked = texts_of[cid]
        out.append(
            {
                "case_id": cid,
                "risk_score": round(score, 6),
                "summary": _summary(
                    ordered, n_signals, families, typ, score, central, texts, n_linked
                ),
                "risk_accounts": ev.n_flagged,
                "risk_families": len(ev.families),
                "risk_strongest": round(ev.strongest_risk, 4),
                "risk_money": round(ev.money_ratio, 4),
                "risk_evidence": round(ev.evidence(settings.case_score), 6),
                "risk_reason": ev.reason(currency),
            }
        )
    return pl.DataFrame(
        out,
        schema={
            "case_id": pl.String,
            "risk_score": pl.Float64,
            "summary": pl.String,
            **{c: CASE_SCHEMA[c] for c in CASE_SCHEMA.names() if c.startswith("risk_")},
        },
    )


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
    n_linked: int = 0,
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
    if n_linked:
        lines.append(
            f"- {n_linked:,} more account{'s' if n_linked > 1 else ''} linked to it by the same "
            "patterns or transfers are listed as linked, not named (the case's size cap)."
        )
    return "\n".join(lines)
