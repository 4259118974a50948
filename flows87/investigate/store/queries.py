"""Read side for the web layer: the case queue (filter, sort, page) and a case's full detail.

Every filter is a SQLAlchemy expression with bound parameters; sort keys come from a fixed
table (`SORTS`), never from the caller's text.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from flows87.errors import ConfigError
from flows87.investigate.store.audit import audit_entries
from flows87.investigate.store.errors import InvalidInput, NotFound
from flows87.investigate.store.loader import TXN_COLUMNS
from flows87.investigate.store.models import (
    STATUSES,
    Approval,
    Assignment,
    Case,
    CaseAccount,
    CaseInterval,
    CaseSignal,
    CaseTransaction,
    CaseTypology,
    Disposition,
    Note,
    User,
)

UNASSIGNED = "-"  # assignee filter value meaning "nobody"
SORTS = {
    "risk": Case.risk_score,
    "rank": Case.rank,
    "amount": Case.total_amount,
    "accounts": Case.n_accounts,
    "signals": Case.n_signals,
    "first_ts": Case.first_ts,
    "last_ts": Case.last_ts,
    "first_seen": Case.first_seen_at,
    "updated": Case.updated_at,
    "status": Case.status,
    "typology": Case.primary_typology,
    "case_id": Case.case_id,
}
DATE_FIELDS = {
    "activity": None,  # the case's transactions overlap [date_from, date_to]
    "first_seen": Case.first_seen_at,
    "updated": Case.updated_at,
    "closed": Case.closed_at,
}
MAX_PAGE_SIZE = 500
DETECTOR_INFO = {
    "pyod_ensemble": {
        "title": "Unusual account (anomaly ensemble)",
        "description": "The account's features are rare among all accounts according to an "
        "ensemble of unsupervised PyOD detectors (settings: rules/settings/detectors.yaml). "
        "The evidence lists the features that make it unusual, with their percentiles.",
        "references": ["PyOD: https://github.com/yzhao062/pyod"],
        "severity": None,
        "falsepositives": ["accounts that are simply rare: large businesses, new products"],
    }
}


@dataclass
class CasePage:
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _list(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if value is None or value == "" or value == []:
        return None
    return [value] if isinstance(value, str) else list(value)


def list_cases(
    session: Session,
    *,
    status: str | list[str] | None = None,
    typology: str | list[str] | None = None,
    assignee: str | None = None,
    disposition: str | list[str] | None = None,
    min_risk: float | None = None,
    max_risk: float | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    date_field: str = "activity",
    account: str | None = None,
    search: str | None = None,
    awaiting_approval: bool | None = None,
    first_seen_before: datetime | None = None,
    sort: str = "-risk",
    page: int = 1,
    page_size: int = 50,
) -> CasePage:
    """The case queue. `sort` is a key of SORTS, prefixed with '-' for descending (ties by
    case id). `assignee` is a username or UNASSIGNED ("-"). `search` matches a case id prefix
    or an exact account id; `first_seen_before` keeps the cases first seen before that time (the
    overdue ones, with the open statuses). Raises InvalidInput on an unknown sort, status or date field."""
    conds: list[ColumnElement[bool]] = []
    statuses = _list(status)
    if statuses:
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise InvalidInput(f"unknown status {bad[0]!r} (one of {', '.join(STATUSES)})")
        conds.append(Case.status.in_(statuses))
    typologies = _list(typology)
    if typologies:
        conds.append(
            exists().where(
                CaseTypology.case_id == Case.case_id, CaseTypology.typology.in_(typologies)
            )
        )
    if assignee is not None and assignee != "":
        if assignee == UNASSIGNED:
            conds.append(Case.assignee_id.is_(None))
        else:
            conds.append(
                Case.assignee_id
                == select(User.id).where(User.username == assignee).scalar_subquery()
            )
    dispositions = _list(disposition)
    if dispositions:
        conds.append(Case.disposition.in_(dispositions))
    if min_risk is not None:
        conds.append(Case.risk_score >= float(min_risk))
    if max_risk is not None:
        conds.append(Case.risk_score <= float(max_risk))
    if date_field not in DATE_FIELDS:
        raise InvalidInput(f"unknown date field {date_field!r} (one of {', '.join(DATE_FIELDS)})")
    column = DATE_FIELDS[date_field]
    if date_from is not None:
        conds.append((Case.last_ts if column is None else column) >= date_from)
    if date_to is not None:
        conds.append((Case.first_ts if column is None else column) <= date_to)
    if account:
        conds.append(
            exists().where(CaseAccount.case_id == Case.case_id, CaseAccount.account_id == account)
        )
    if search:
        term = search.strip()
        conds.append(
            or_(
                Case.case_id.startswith(term, autoescape=True),
                exists().where(CaseAccount.case_id == Case.case_id, CaseAccount.account_id == term),
            )
        )
    pending = exists().where(Approval.case_id == Case.case_id, Approval.state == "pending")
    if awaiting_approval is not None:
        conds.append(pending if awaiting_approval else ~pending)
    if first_seen_before is not None:
        conds.append(Case.first_seen_at < first_seen_before)

    key = sort.lstrip("-+")
    if key not in SORTS:
        raise InvalidInput(f"unknown sort {sort!r} (one of {', '.join(SORTS)}, '-' for descending)")
    col = SORTS[key]
    descending = sort.startswith("-")
    order: list[UnaryExpression[Any]] = [
        col.desc().nulls_last() if descending else col.asc().nulls_last()
    ]
    if key == "risk":  # many cases share the top score: the pipeline's rank orders them
        order.append(Case.rank.asc().nulls_last() if descending else Case.rank.desc().nulls_last())
    if key != "case_id":
        order.append(Case.case_id.asc())

    page = max(1, int(page))
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    where = and_(*conds) if conds else None
    count = select(func.count()).select_from(Case)
    stmt = (
        select(Case, User.username, pending.label("awaiting_approval"))
        .outerjoin(User, User.id == Case.assignee_id)
        .order_by(*order)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    if where is not None:
        count = count.where(where)
        stmt = stmt.where(where)
    total = session.scalar(count) or 0
    items = [
        _row(case, username, bool(waiting)) for case, username, waiting in session.execute(stmt)
    ]
    return CasePage(items, total, page, page_size)


def _row(c: Case, assignee: str | None, waiting: bool) -> dict[str, Any]:
    return {
        "case_id": c.case_id,
        "rank": c.rank,
        "risk_score": c.risk_score,
        "status": c.status,
        "assignee": assignee,
        "awaiting_approval": waiting,
        "disposition": c.disposition,
        "typologies": json.loads(c.typologies),
        "primary_typology": c.primary_typology,
        "families": json.loads(c.families),
        "n_accounts": c.n_accounts,
        "n_signals": c.n_signals,
        "n_transactions": c.n_transactions,
        "total_amount": c.total_amount,
        "first_ts": c.first_ts,
        "last_ts": c.last_ts,
        "first_seen_at": c.first_seen_at,
        "evidence_updated_at": c.evidence_updated_at,
        "updated_at": c.updated_at,
        "headline": (c.summary or "").split("\n", 1)[0],
        "risk_reason": c.risk_reason,
        "learned_score": c.learned_score,
        "today_score": c.today_score,
    }


@lru_cache(maxsize=8)
def _rule_info(folder: str | None) -> dict[str, dict[str, Any]]:
    from flows87.pipeline.rules import load_rules

    out = {}
    for item in load_rules(folder):
        r = item.rule
        out[r.id] = {
            "title": r.title,
            "description": r.description.strip(),
            "references": list(r.references),
            "severity": r.severity,
            "falsepositives": list(r.falsepositives),
            "status": r.status,
            "scope": r.scope,
            "family": r.family,
            "typologies": list(r.typologies),
        }
    return out


def rule_info(rules_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Rule id -> title, description, references, severity, false positives (from the YAML)."""
    return _rule_info(str(rules_dir) if rules_dir else None)


def case_detail(
    session: Session,
    case_id: str,
    *,
    rules_dir: str | Path | None = None,
    audit_limit: int = 200,
) -> dict[str, Any]:
    """Everything the case page shows. Keys: case, risk_breakdown, signals, accounts,
    transactions, notes, assignments, approvals, dispositions, intervals, audit, warnings."""
    row = session.execute(
        select(Case, User.username)
        .outerjoin(User, User.id == Case.assignee_id)
        .where(Case.case_id == case_id)
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id!r}")
    case, assignee = row
    # user id -> name; an empty reference (None: nobody) looks up as None
    names: dict[int | None, str] = dict(session.execute(select(User.id, User.username)).all())
    pending = session.scalar(
        select(Approval.id).where(Approval.case_id == case_id, Approval.state == "pending")
    )
    summary = _row(case, assignee, pending is not None)
    summary.update(
        summary=case.summary,
        anchor_account=case.anchor_account,
        central_account=case.central_account,
        signal_ids=json.loads(case.signal_ids),
        close_reason=case.close_reason,
        closed_at=case.closed_at,
        closed_by=names.get(case.closed_by_id),
        first_interval=case.first_interval,
        last_interval=case.last_interval,
        pending_approval=pending,
    )
    warnings: list[str] = []
    try:
        rules = rule_info(rules_dir)
    except ConfigError as exc:
        rules = {}
        warnings.append(f"rule descriptions unavailable: {exc.message}")
    signals = []
    for s in session.scalars(
        select(CaseSignal).where(CaseSignal.case_id == case_id).order_by(CaseSignal.seq)
    ):
        try:
            evidence = json.loads(s.evidence)
        except ValueError:
            evidence = {"text": s.evidence}
        signals.append(
            {
                "seq": s.seq,
                "source": s.source,
                "signal_id": s.signal_id,
                "account_id": s.account_id,
                "score": s.score,
                "family": s.family,
                "typologies": json.loads(s.typologies),
                "txn_ids": json.loads(s.txn_ids),
                "window_start": s.window_start,
                "window_end": s.window_end,
                "evidence": evidence,
                "summary": s.summary,
                "rule": rules.get(s.signal_id) or DETECTOR_INFO.get(s.signal_id),
            }
        )
    accounts = [
        {
            "account_id": a.account_id,
            "role": a.role,
            "position": a.position,
            "risk_score": a.risk_score,
            "signal_risk": a.signal_risk,
            "anomaly_score": a.anomaly_score,
            "n_signals": a.n_signals,
            "families": json.loads(a.families),
            "name": a.name,
            "kind": a.kind,
            "bank_id": a.bank_id,
            "party_id": a.party_id,
            "country": a.country,
            "opened_at": a.opened_at,
            "details": json.loads(a.details),
        }
        for a in session.scalars(
            select(CaseAccount).where(CaseAccount.case_id == case_id).order_by(CaseAccount.position)
        )
    ]
    transactions = [
        {c: getattr(t, c) for c in _TXN_FIELDS}
        for t in session.scalars(
            select(CaseTransaction)
            .where(CaseTransaction.case_id == case_id)
            .order_by(CaseTransaction.ts, CaseTransaction.txn_id)
        )
    ]
    notes = [
        {"id": n.id, "author": names.get(n.author_id), "created_at": n.created_at, "body": n.body}
        for n in session.scalars(select(Note).where(Note.case_id == case_id).order_by(Note.id))
    ]
    assignments = [
        {
            "assignee": names.get(a.assignee_id),
            "assigned_by": names.get(a.assigned_by_id),
            "assigned_at": a.assigned_at,
        }
        for a in session.scalars(
            select(Assignment).where(Assignment.case_id == case_id).order_by(Assignment.id)
        )
    ]
    approvals = [
        {
            "id": a.id,
            "disposition": a.disposition,
            "reason": a.reason,
            "requested_by": names.get(a.requested_by_id),
            "requested_at": a.requested_at,
            "state": a.state,
            "decided_by": names.get(a.decided_by_id),
            "decided_at": a.decided_at,
            "comment": a.comment,
        }
        for a in session.scalars(
            select(Approval).where(Approval.case_id == case_id).order_by(Approval.id)
        )
    ]
    dispositions = [
        {
            "disposition": d.disposition,
            "reason": d.reason,
            "decided_by": names.get(d.decided_by_id),
            "decided_at": d.decided_at,
            "approval_id": d.approval_id,
        }
        for d in session.scalars(
            select(Disposition).where(Disposition.case_id == case_id).order_by(Disposition.id)
        )
    ]
    intervals = [
        {"interval": k, "risk_score": r, "rank": n}
        for k, r, n in session.execute(
            select(CaseInterval.interval_key, CaseInterval.risk_score, CaseInterval.rank)
            .where(CaseInterval.case_id == case_id)
            .order_by(CaseInterval.interval_key)
        )
    ]
    return {
        "case": summary,
        "risk_breakdown": risk_breakdown(signals),
        "signals": signals,
        "accounts": accounts,
        "transactions": transactions,
        "notes": notes,
        "assignments": assignments,
        "approvals": approvals,
        "dispositions": dispositions,
        "intervals": intervals,
        "audit": audit_entries(session, entity_type="case", entity_id=case_id, limit=audit_limit),
        "warnings": warnings,
    }


_TXN_FIELDS = ("txn_id", *TXN_COLUMNS)


def risk_breakdown(signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per family of evidence: signals, accounts, strongest and summed score, share of the sum."""
    by: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"signals": 0, "accounts": set(), "max_score": 0.0, "sum_score": 0.0, "ids": set()}
    )
    for s in signals:
        f = by[s["family"]]
        f["signals"] += 1
        f["accounts"].add(s["account_id"])
        f["max_score"] = max(f["max_score"], s["score"])
        f["sum_score"] += s["score"]
        f["ids"].add(s["signal_id"])
    total = sum(f["sum_score"] for f in by.values()) or 1.0
    out = [
        {
            "family": fam,
            "signals": f["signals"],
            "accounts": len(f["accounts"]),
            "max_score": round(f["max_score"], 4),
            "sum_score": round(f["sum_score"], 4),
            "share": round(f["sum_score"] / total, 4),
            "signal_ids": sorted(f["ids"]),
        }
        for fam, f in by.items()
    ]
    return sorted(out, key=lambda r: (-r["sum_score"], r["family"]))
