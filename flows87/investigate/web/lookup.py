"""Looking across cases: related cases, an account's page, and the search box.

The store keeps, per case, its accounts (with the party's identifiers) and its transactions;
an account seen in several cases is several rows. These read them all for one account, or for
what someone typed, with SQLAlchemy expressions (bound parameters), never SQL text.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from flows87.investigate.store.loader import TXN_COLUMNS
from flows87.investigate.store.models import Case, CaseAccount, CaseTransaction

SHARED_KEYS = ("address", "phone", "email", "device_id")
"""Identifiers in an account's details that, shared with another party, matter to a case."""
TXN_LIMIT = 1000
SEARCH_LIMIT = 50
RANK_LAST = 2**62
"""Where a case without a rank goes among equal risks (as the queue's nulls last)."""


def related_cases(session: Session, case_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Other cases sharing an account with this one: case id, status, disposition, risk,
    typology and the shared accounts, most shared first."""
    mine = select(CaseAccount.account_id).where(CaseAccount.case_id == case_id)
    rows = session.execute(
        select(
            CaseAccount.case_id,
            CaseAccount.account_id,
            Case.status,
            Case.disposition,
            Case.risk_score,
            Case.rank,
            Case.primary_typology,
        )
        .join(Case, Case.case_id == CaseAccount.case_id)
        .where(CaseAccount.account_id.in_(mine), CaseAccount.case_id != case_id)
        .order_by(CaseAccount.case_id, CaseAccount.account_id)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    ranks: dict[str, int] = {}
    for cid, account, status, disposition, risk, rank, typology in rows:
        ranks[cid] = RANK_LAST if rank is None else rank
        item = out.setdefault(
            cid,
            {
                "case_id": cid,
                "status": status,
                "disposition": disposition,
                "risk_score": risk,
                "primary_typology": typology,
                "shared": [],
            },
        )
        item["shared"].append(account)
    ranked = sorted(
        out.values(),
        key=lambda r: (-len(r["shared"]), -r["risk_score"], ranks[r["case_id"]], r["case_id"]),
    )
    return ranked[:limit]


def _details(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _sharing(session: Session, account_id: str, key: str, value: Any) -> list[dict[str, Any]]:
    """Other accounts whose party has the same identifier (`key` of the details, or a column)."""
    if value in (None, ""):
        return []
    if key in ("party_id", "name"):
        cond = getattr(CaseAccount, key) == value
    else:
        cond = CaseAccount.details.contains(
            f'"{key}":{json.dumps(value, ensure_ascii=False)}', autoescape=True
        )
    rows = session.execute(
        select(CaseAccount.account_id, CaseAccount.name, CaseAccount.details)
        .where(cond, CaseAccount.account_id != account_id)
        .order_by(CaseAccount.account_id)
        .limit(500)
    ).all()
    seen: dict[str, dict[str, Any]] = {}
    for other, name, details in rows:
        if key not in ("party_id", "name") and _details(details).get(key) != value:
            continue
        seen.setdefault(other, {"account_id": other, "name": name})
    return list(seen.values())[:SEARCH_LIMIT]


def account_view(session: Session, account_id: str) -> dict[str, Any] | None:
    """An account across the store: its identifiers (and who shares them), every case it is
    in, and the transactions the store holds for it (from any case). None if no case has it."""
    rows = session.execute(
        select(CaseAccount, Case)
        .join(Case, Case.case_id == CaseAccount.case_id)
        .where(CaseAccount.account_id == account_id)
        .order_by(Case.first_seen_at.desc(), Case.case_id)
    ).all()
    if not rows:
        return None
    latest: CaseAccount = rows[0][0]
    details = _details(latest.details)
    identifiers = [
        ("name", latest.name),
        ("kind", latest.kind),
        ("party_id", latest.party_id),
        ("bank_id", latest.bank_id),
        ("country", latest.country),
        ("opened_at", latest.opened_at),
        *[(k, v) for k, v in details.items() if v not in (None, "")],
    ]
    shared = [
        {"key": key, "value": value, "accounts": others}
        for key, value in identifiers
        if key in (*SHARED_KEYS, "party_id", "name")
        for others in [_sharing(session, account_id, key, value)]
        if others
    ]
    cases = [
        {
            "case_id": c.case_id,
            "role": a.role,
            "status": c.status,
            "disposition": c.disposition,
            "risk_score": c.risk_score,
            "account_risk": a.risk_score,
            "primary_typology": c.primary_typology,
            "first_ts": c.first_ts,
            "last_ts": c.last_ts,
            "n_signals": a.n_signals,
        }
        for a, c in rows
    ]
    involved = or_(
        CaseTransaction.src_account == account_id, CaseTransaction.dst_account == account_id
    )
    total = (
        session.scalar(select(func.count(func.distinct(CaseTransaction.txn_id))).where(involved))
        or 0
    )
    txns: dict[str, dict[str, Any]] = {}
    for t in session.scalars(
        select(CaseTransaction)
        .where(involved)
        .order_by(CaseTransaction.ts, CaseTransaction.txn_id, CaseTransaction.case_id)
    ):
        item = txns.get(t.txn_id)
        if item is None:
            if len(txns) >= TXN_LIMIT:
                continue
            item = txns[t.txn_id] = {c: getattr(t, c) for c in ("txn_id", *TXN_COLUMNS)}
            item["cases"] = []
            item["direction"] = "out" if t.src_account == account_id else "in"
        item["cases"].append(t.case_id)
    return {
        "account_id": account_id,
        "identifiers": identifiers,
        "shared": shared,
        "cases": cases,
        "transactions": list(txns.values()),
        "n_transactions": total,
    }


def search(session: Session, text: str) -> dict[str, list[dict[str, Any]]]:
    """What the header's search box finds: cases by id, accounts by id, name, party or an
    identifier (phone, e-mail, address, device), transactions by id."""
    term = text.strip()
    if not term:
        return {"cases": [], "accounts": [], "transactions": []}
    cases = [
        {"case_id": c.case_id, "status": c.status, "risk_score": c.risk_score}
        for c in session.scalars(
            select(Case)
            .where(Case.case_id.istartswith(term, autoescape=True))
            .order_by(Case.risk_score.desc(), Case.rank.asc().nulls_last(), Case.case_id)
            .limit(SEARCH_LIMIT)
        )
    ]
    matched = or_(
        CaseAccount.account_id.istartswith(term, autoescape=True),
        CaseAccount.name.icontains(term, autoescape=True),
        CaseAccount.party_id == term,
        CaseAccount.details.icontains(term, autoescape=True),
    )
    accounts: dict[str, dict[str, Any]] = {}
    for a in session.scalars(
        select(CaseAccount).where(matched).order_by(CaseAccount.account_id).limit(500)
    ):
        item = accounts.get(a.account_id)
        if item is None:
            if len(accounts) >= SEARCH_LIMIT:
                continue
            where = _where_found(a, term)
            item = accounts[a.account_id] = {
                "account_id": a.account_id,
                "name": a.name,
                "kind": a.kind,
                "found_in": where,
                "cases": [],
            }
        item["cases"].append(a.case_id)
    transactions: dict[str, dict[str, Any]] = {}
    for t in session.scalars(
        select(CaseTransaction)
        .where(CaseTransaction.txn_id == term)
        .order_by(CaseTransaction.case_id)
        .limit(SEARCH_LIMIT)
    ):
        item = transactions.setdefault(
            t.txn_id,
            {c: getattr(t, c) for c in ("txn_id", *TXN_COLUMNS)} | {"cases": []},
        )
        item["cases"].append(t.case_id)
    return {
        "cases": cases,
        "accounts": list(accounts.values()),
        "transactions": list(transactions.values()),
    }


def _where_found(a: CaseAccount, term: str) -> str:
    low = term.lower()
    if a.account_id.lower().startswith(low):
        return "account id"
    if a.name and low in a.name.lower():
        return "name"
    if a.party_id == term:
        return "party id"
    for key, value in _details(a.details).items():
        if value is not None and low in str(value).lower():
            return key.replace("_", " ")
    return "details"
