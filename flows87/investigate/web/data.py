"""Read helpers of the case pages: counts and filters beyond the store's queries, the timeline.

Small read helpers the web pages need beyond flows87.investigate.store's query functions, and the
coordinates of the transaction timeline (drawn as SVG by the template, no script needed).

Everything here reads with SQLAlchemy expressions (bound parameters), never SQL text.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows87.investigate.store.models import Approval, Case, CaseTypology

DUE_DAYS_ENV = "FLOWS87_CASE_DUE_DAYS"
DEFAULT_DUE_DAYS = 30


def case_due_days() -> int:
    """Days from a case's first sighting to its due date (FLOWS87_CASE_DUE_DAYS, default 30);
    read on each request so an operator's change needs no code."""
    text = os.environ.get(DUE_DAYS_ENV, "").strip()
    if text.isdigit() and 0 < int(text) <= 3650:
        return int(text)
    return DEFAULT_DUE_DAYS


def case_age(case: dict[str, Any], now: datetime, due_days: int) -> dict[str, Any]:
    """Age in days since the case was first seen, its due date, and whether it is overdue (open
    past the due date). A closed case is never overdue."""
    seen = _ts(case.get("first_seen_at"))
    if seen is None:
        return {"age_days": None, "due_at": None, "overdue": False, "due_in_days": None}
    due = seen + timedelta(days=due_days)
    open_ = case.get("status") != "closed"
    return {
        "age_days": max(0, (now - seen).days),
        "due_at": due,
        "overdue": open_ and now > due,
        "due_in_days": (due - now).days if open_ else None,
    }


def typologies(session: Session) -> list[str]:
    """Every typology some case carries (for the queue's filter)."""
    return list(
        session.scalars(select(CaseTypology.typology).distinct().order_by(CaseTypology.typology))
    )


def status_counts(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all())


def awaiting_approval_count(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(Approval).where(Approval.state == "pending")
        )
        or 0
    )


def parse_day(value: str | None, what: str, *, end: bool = False) -> datetime | None:
    """A date like 2026-01-31 as the start (or, with end=True, the last instant) of that day
    in UTC."""
    from flows87.investigate.store.errors import InvalidInput

    if value is None or not value.strip():
        return None
    try:
        d = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} {value[:40]!r} is not a date like 2026-01-31") from None
    start = datetime(d.year, d.month, d.day, tzinfo=UTC)
    return start + timedelta(days=1, microseconds=-1) if end else start


def _ts(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def timeline(
    transactions: list[dict[str, Any]],
    members: set[str],
    *,
    width: int = 960,
    height: int = 200,
    limit: int = 3000,
) -> dict[str, Any] | None:
    """Points (x, y, r, class, title) of the case's transactions over time, amount on a log
    scale, with time and amount ticks. None when no transaction has a time and an amount."""
    rows = []
    for t in transactions:
        ts = _ts(t.get("ts"))
        amount = t.get("amount_base") if t.get("amount_base") is not None else t.get("amount")
        if ts is None or amount is None:
            continue
        rows.append((ts, float(amount), t))
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[2].get("txn_id") or ""))
    shown = rows[:limit]
    left, right, top, bottom = 70, 16, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    t0, t1 = shown[0][0], shown[-1][0]
    span = max((t1 - t0).total_seconds(), 3600.0)
    lo = math.floor(math.log10(max(min(a for _, a, _ in shown), 0.01)))
    hi = math.ceil(math.log10(max(max(a for _, a, _ in shown), 0.01)))
    if hi <= lo:
        hi = lo + 1

    def x(ts: datetime) -> float:
        return round(left + (ts - t0).total_seconds() / span * plot_w, 1)

    def y(amount: float) -> float:
        v = math.log10(max(amount, 0.01))
        return round(top + plot_h - (v - lo) / (hi - lo) * plot_h, 1)

    points = []
    for ts, amount, t in shown:
        src, dst = t.get("src_account"), t.get("dst_account")
        inside = src in members and dst in members
        points.append(
            {
                "x": x(ts),
                "y": y(amount),
                "cls": "inside" if inside else "outside",
                "title": (
                    f"{ts:%Y-%m-%d %H:%M} UTC · {amount:,.2f} {t.get('currency') or ''} · "
                    f"{src or '?'} → {dst or '?'}"
                    + (f" · {t['channel']}" if t.get("channel") else "")
                    + f" · {t.get('txn_id')}"
                ),
            }
        )
    # time ticks: days, or every n days for long spans (at most ~10 ticks)
    days = max(1, math.ceil(span / 86400 / 10))
    first_day = datetime(t0.year, t0.month, t0.day, tzinfo=UTC)
    xticks = []
    d = first_day
    while d <= t1 + timedelta(seconds=1):
        if d >= t0:
            xticks.append({"x": x(d), "label": f"{d:%Y-%m-%d}"})
        d += timedelta(days=days)
    yticks = [
        {"y": y(10.0**p), "label": f"{10.0**p:,.0f}" if p >= 0 else f"{10.0**p:g}"}
        for p in range(lo, hi + 1)
    ]
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "right": width - right,
        "bottom": top + plot_h,
        "points": points,
        "xticks": xticks,
        "yticks": yticks,
        "shown": len(shown),
        "total": len(rows),
        "first": t0,
        "last": t1,
    }
