"""The case page's money graph (what static/graph.js draws) and a node's counterparties from the
whole store (click to expand).

A case can move money between hundreds of accounts; drawn as they are they make a hairball. So
the graph keeps at most `GRAPH_LIMIT` accounts (the case's own first, then the counterparties
that moved most money) and folds the rest into one "+N others" node per side: those that mostly
sent money into the drawn accounts and those that mostly received from them. Every edge keeps
its transactions' times and base amounts, so the page's time slider needs no second request.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flows87.investigate.store.errors import NotFound
from flows87.investigate.store.models import Case, CaseAccount, CaseTransaction

GRAPH_LIMIT = 60
"""Accounts drawn at most (besides the two "+N others" nodes)."""
EXPAND_LIMIT = 40
"""Counterparties one click adds at most (those that moved most money with the account)."""
MEMBERS_LISTED = 200
"""Accounts an "others" node lists by name in its details."""
CHUNK = 500
"""Ids per IN (...) list."""
SENDERS, RECEIVERS = "others:senders", "others:receivers"


@dataclass(frozen=True)
class _Txn:
    txn_id: str
    src: str
    dst: str
    ts: datetime | None
    base: float
    amount: float | None
    currency: str | None


@dataclass
class _Edge:
    src: str
    dst: str
    txns: list[_Txn] = field(default_factory=list)

    def as_json(self, outside: set[str] | None = None) -> dict[str, Any]:
        """Totals, first/last time, the amount per original currency and, for the time slider,
        each transaction as [epoch milliseconds, base amount]."""
        times = [t.ts for t in self.txns if t.ts is not None]
        currencies: dict[str, float] = defaultdict(float)
        for t in self.txns:
            if t.currency and t.amount is not None:
                currencies[t.currency] += t.amount
        out: dict[str, Any] = {
            "src": self.src,
            "dst": self.dst,
            "amount": round(sum(t.base for t in self.txns), 2),
            "count": len(self.txns),
            "first_ts": min(times) if times else None,
            "last_ts": max(times) if times else None,
            "currencies": {c: round(v, 2) for c, v in sorted(currencies.items())},
            "txns": sorted(
                [int(t.ts.timestamp() * 1000), round(t.base, 2)]
                for t in self.txns
                if t.ts is not None
            ),
        }
        if outside is not None:
            out["outside_case"] = sum(1 for t in self.txns if t.txn_id in outside)
        return out


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _txns(rows: Iterable[CaseTransaction]) -> list[_Txn]:
    """One per transaction id (a transfer held by several cases counts once); transfers without
    both ends or from an account to itself are not flows between accounts."""
    seen: dict[str, _Txn] = {}
    for r in rows:
        if r.src_account is None or r.dst_account is None or r.src_account == r.dst_account:
            continue
        if r.txn_id in seen:
            continue
        base = r.amount_base if r.amount_base is not None else (r.amount or 0.0)
        seen[r.txn_id] = _Txn(
            r.txn_id, r.src_account, r.dst_account, r.ts, float(base), r.amount, r.currency
        )
    return list(seen.values())


def base_currency(txns: Iterable[_Txn]) -> str | None:
    """The run's base currency as the transactions show it (the currency whose amounts equal
    their base amounts); the store does not record it."""
    same = Counter(
        t.currency
        for t in txns
        if t.currency and t.amount and abs(t.amount - t.base) <= 1e-6 * max(1.0, abs(t.base))
    )
    return same.most_common(1)[0][0] if same else None


def _names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """Names the store knows for accounts (from any case that has them as members)."""
    names: dict[str, str] = {}
    for part in _chunks(sorted(set(ids))):
        for account_id, name in session.execute(
            select(CaseAccount.account_id, CaseAccount.name)
            .where(CaseAccount.account_id.in_(part), CaseAccount.name.is_not(None))
            .order_by(CaseAccount.account_id)
        ):
            if name:
                names.setdefault(account_id, name)
    return names


def _node(
    account_id: str,
    member: CaseAccount | None,
    names: dict[str, str],
    flow_in: float,
    flow_out: float,
) -> dict[str, Any]:
    return {
        "id": account_id,
        "aggregate": False,
        "in_case": member is not None,
        "role": member.role if member else "counterparty",
        "name": (member.name if member else None) or names.get(account_id),
        "kind": member.kind if member else None,
        "risk_score": member.risk_score if member else None,
        "flow_in": round(flow_in, 2),
        "flow_out": round(flow_out, 2),
    }


def _flows(txns: list[_Txn]) -> tuple[dict[str, float], dict[str, float]]:
    flow_in: dict[str, float] = defaultdict(float)
    flow_out: dict[str, float] = defaultdict(float)
    for t in txns:
        flow_out[t.src] += t.base
        flow_in[t.dst] += t.base
    return flow_in, flow_out


def _edge_flows(edges: Iterable[_Edge]) -> tuple[dict[str, float], dict[str, float]]:
    """Money into and out of each end of the drawn edges ("others" nodes included)."""
    flow_in: dict[str, float] = defaultdict(float)
    flow_out: dict[str, float] = defaultdict(float)
    for e in edges:
        amount = sum(t.base for t in e.txns)
        flow_out[e.src] += amount
        flow_in[e.dst] += amount
    return flow_in, flow_out


def _kept(
    ids: list[str],
    members: dict[str, CaseAccount],
    moved: dict[str, float],
    limit: int,
) -> set[str]:
    """Anchor and central account always; then case members, then counterparties, each by the
    money they moved."""
    forced = [i for i in ids if i in members and members[i].role in ("anchor", "central")]

    def rank(i: str) -> tuple[bool, float, str]:
        return (i not in members, -moved.get(i, 0.0), i)

    rest = sorted((i for i in ids if i not in forced), key=rank)
    return set(forced) | set(rest[: max(limit - len(forced), 0)])


def _others(
    hidden: list[str],
    side: str,
    members: dict[str, CaseAccount],
    names: dict[str, str],
    moved: dict[str, float],
    flow_in: float,
    flow_out: float,
) -> dict[str, Any]:
    listed = sorted(hidden, key=lambda i: (-moved.get(i, 0.0), i))[:MEMBERS_LISTED]
    in_case = sum(1 for i in hidden if i in members)
    return {
        "id": side,
        "aggregate": True,
        "in_case": False,
        "role": "others",
        "name": f"+{len(hidden)} others",
        "side": "in" if side == SENDERS else "out",
        "count": len(hidden),
        "members_in_case": in_case,
        "members": [
            {
                "id": i,
                "name": (members[i].name if i in members else None) or names.get(i),
                "in_case": i in members,
                "amount": round(moved.get(i, 0.0), 2),
            }
            for i in listed
        ],
        "kind": None,
        "risk_score": None,
        "flow_in": round(flow_in, 2),
        "flow_out": round(flow_out, 2),
    }


def case_graph(session: Session, case_id: str, limit: int = GRAPH_LIMIT) -> dict[str, Any]:
    """The case's money graph for drawing: at most `limit` accounts (plus "+N others" nodes) as
    nodes, with flow in/out, name and whether they are case members; edges src -> dst with the
    base amount, count, first/last time, amounts per currency and each transaction's time."""
    if session.get(Case, case_id) is None:
        raise NotFound(f"no case {case_id!r}")
    members = {
        a.account_id: a
        for a in session.scalars(select(CaseAccount).where(CaseAccount.case_id == case_id))
    }
    txns = _txns(
        session.scalars(
            select(CaseTransaction)
            .where(CaseTransaction.case_id == case_id)
            .order_by(CaseTransaction.ts, CaseTransaction.txn_id)
        )
    )
    flow_in, flow_out = _flows(txns)
    moved = {i: flow_in.get(i, 0.0) + flow_out.get(i, 0.0) for i in set(flow_in) | set(flow_out)}
    ids = sorted(set(members) | set(moved))
    kept = _kept(ids, members, moved, limit)
    hidden = [i for i in ids if i not in kept]
    names = _names(session, [i for i in ids if i not in members])
    # a hidden account joins the senders when it sent the drawn accounts at least what it got
    sent: dict[str, float] = defaultdict(float)
    got: dict[str, float] = defaultdict(float)
    for t in txns:
        if t.src not in kept and t.dst in kept:
            sent[t.src] += t.base
        if t.dst not in kept and t.src in kept:
            got[t.dst] += t.base
    side = {i: SENDERS if sent[i] >= got[i] else RECEIVERS for i in hidden}
    edges: dict[tuple[str, str], _Edge] = {}
    for t in txns:
        src, dst = side.get(t.src, t.src), side.get(t.dst, t.dst)
        if src == dst:
            continue
        edges.setdefault((src, dst), _Edge(src, dst)).txns.append(t)
    nodes = [_node(i, members.get(i), names, flow_in[i], flow_out[i]) for i in sorted(kept)]
    drawn_in, drawn_out = _edge_flows(edges.values())
    for agg in (SENDERS, RECEIVERS):
        group = [i for i in hidden if side[i] == agg]
        if group:
            nodes.append(_others(group, agg, members, names, moved, drawn_in[agg], drawn_out[agg]))
    times = [t.ts for t in txns if t.ts is not None]
    return {
        "nodes": nodes,
        "edges": [edges[k].as_json() for k in sorted(edges)],
        "base_currency": base_currency(txns),
        "summary": {
            "accounts": len(ids),
            "drawn": len(kept),
            "hidden": len(hidden),
            "limit": limit,
            "transactions": len(txns),
            "first_ts": min(times) if times else None,
            "last_ts": max(times) if times else None,
        },
    }


def account_counterparties(
    session: Session, case_id: str, account_id: str, limit: int = EXPAND_LIMIT
) -> dict[str, Any]:
    """An account's flows with its counterparties across every case the store holds (what a
    click on a graph node adds): the `limit` counterparties that moved most money with it, as
    nodes and edges shaped like `case_graph`'s; each edge counts its transactions outside the
    case (`outside_case`)."""
    if session.get(Case, case_id) is None:
        raise NotFound(f"no case {case_id!r}")
    rows = list(
        session.scalars(
            select(CaseTransaction)
            .where(
                or_(
                    CaseTransaction.src_account == account_id,
                    CaseTransaction.dst_account == account_id,
                )
            )
            .order_by(CaseTransaction.ts, CaseTransaction.txn_id, CaseTransaction.case_id)
        )
    )
    if (
        not rows
        and session.scalar(
            select(CaseAccount.account_id).where(CaseAccount.account_id == account_id).limit(1)
        )
        is None
    ):
        raise NotFound(f"the store holds nothing of account {account_id!r}")
    in_case = {r.txn_id for r in rows if r.case_id == case_id}
    txns = _txns(rows)
    outside = {t.txn_id for t in txns if t.txn_id not in in_case}
    moved: dict[str, float] = defaultdict(float)
    for t in txns:
        moved[t.dst if t.src == account_id else t.src] += t.base
    ranked = sorted(moved, key=lambda i: (-moved[i], i))
    shown = set(ranked[:limit])
    members = {
        a.account_id: a
        for a in session.scalars(
            select(CaseAccount).where(
                CaseAccount.case_id == case_id, CaseAccount.account_id.in_([account_id, *shown])
            )
        )
    }
    names = _names(session, [account_id, *shown])
    edges: dict[tuple[str, str], _Edge] = {}
    for t in txns:
        if t.src in shown or t.dst in shown:
            edges.setdefault((t.src, t.dst), _Edge(t.src, t.dst)).txns.append(t)
    flow_in, flow_out = _flows([t for e in edges.values() for t in e.txns])
    return {
        "account": account_id,
        "nodes": [
            _node(i, members.get(i), names, flow_in[i], flow_out[i])
            for i in sorted(shown | {account_id})
        ],
        "edges": [edges[k].as_json(outside) for k in sorted(edges)],
        "base_currency": base_currency(txns),
        "counterparties": len(ranked),
        "more": max(len(ranked) - limit, 0),
        "transactions": len(txns),
        "outside_case": len(outside),
    }
