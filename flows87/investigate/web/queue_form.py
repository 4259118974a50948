"""The queue's filter form as a browser sends it: every box as text, empty meaning "no filter".

A browser submits every field of the form, the empty ones as "". FastAPI's typed query
parameters answer a JSON 400 to `min_risk=` (not a number); here each field is read as text,
parsed, and a bad value becomes a message shown on the queue page beside the form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flows87.investigate.store import STATUSES
from flows87.investigate.store.errors import InvalidInput
from flows87.investigate.store.queries import DATE_FIELDS, SORTS
from flows87.investigate.web import data

OPEN_STATUSES = tuple(s for s in STATUSES if s != "closed")
"""What the queue shows when the form names no status: closed cases are out of the way."""
PAGE_SIZES = (10, 25, 50, 100, 200)


@dataclass
class QueueForm:
    """The parsed filters, and what was wrong with the others (each ignored)."""

    status: list[str] = field(default_factory=list)
    typology: str = ""
    assignee: str = ""
    disposition: str = ""
    min_risk: float | None = None
    max_risk: float | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    date_field: str = "activity"
    q: str = ""
    account: str = ""
    awaiting: str = ""
    overdue: str = ""
    sort: str = "-risk"
    page: int = 1
    page_size: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def statuses(self) -> list[str]:
        """The statuses to list: those asked for, else every open one."""
        return self.status or list(OPEN_STATUSES)


def _number(value: str, what: str, errors: list[str]) -> float | None:
    text = value.strip().replace(",", ".")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        errors.append(f"{what} {value[:40]!r} is not a number (leave it empty for no limit)")
        return None
    if not math.isfinite(number) or not 0 <= number <= 1000:
        errors.append(f"{what} {value[:40]!r} must be a number from 0 to 1000")
        return None
    return number


def _integer(value: str, what: str, errors: list[str], low: int, high: int) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        errors.append(f"{what} {value[:40]!r} must be a whole number from {low} to {high}")
        return None
    return int(text)


def _day(value: str, what: str, errors: list[str], *, end: bool = False) -> datetime | None:
    try:
        return data.parse_day(value, what, end=end)
    except InvalidInput as exc:
        errors.append(exc.message)
        return None


def _text(value: str, what: str, errors: list[str], limit: int) -> str:
    text = value.strip()
    if len(text) > limit:
        errors.append(f"{what} is longer than {limit} characters")
        return ""
    return text


def parse_queue_form(params: Any) -> QueueForm:
    """The queue's filters from the query string (a multi-dict: `status` may repeat)."""

    def one(key: str) -> str:
        value = params.get(key)
        return value if isinstance(value, str) else ""

    errors: list[str] = []
    form = QueueForm(errors=errors)
    statuses = [s.strip() for s in params.getlist("status") if s.strip()][:10]
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        errors.append(f"unknown status {bad[0][:40]!r} (one of {', '.join(STATUSES)})")
    form.status = [s for s in statuses if s in STATUSES]
    form.typology = _text(one("typology"), "the typology", errors, 64)
    form.assignee = _text(one("assignee"), "the assignee", errors, 64)
    form.disposition = _text(one("disposition"), "the disposition", errors, 32)
    form.q = _text(one("q"), "the search", errors, 128)
    form.account = _text(one("account"), "the account", errors, 128)
    form.awaiting = "1" if one("awaiting") == "1" else ""
    form.overdue = "1" if one("overdue") == "1" else ""
    form.min_risk = _number(one("min_risk"), "risk from", errors)
    form.max_risk = _number(one("max_risk"), "risk to", errors)
    form.date_from = _day(one("date_from"), "from date", errors)
    form.date_to = _day(one("date_to"), "to date", errors, end=True)
    date_field = one("date_field").strip() or "activity"
    if date_field in DATE_FIELDS:
        form.date_field = date_field
    else:
        errors.append(f"unknown date field {date_field[:40]!r} (one of {', '.join(DATE_FIELDS)})")
    sort = one("sort").strip() or "-risk"
    if sort.lstrip("-+") in SORTS:
        form.sort = sort
    else:
        errors.append(f"unknown sort {sort[:40]!r} (one of {', '.join(SORTS)})")
    form.page = _integer(one("page"), "the page", errors, 1, 1_000_000) or 1
    form.page_size = _integer(one("page_size"), "the page size", errors, 1, 200)
    form.raw = {
        "status": form.status,
        "typology": form.typology,
        "assignee": form.assignee,
        "disposition": form.disposition,
        "min_risk": one("min_risk").strip()[:40] if form.min_risk is not None else "",
        "max_risk": one("max_risk").strip()[:40] if form.max_risk is not None else "",
        "date_from": one("date_from").strip()[:10] if form.date_from else "",
        "date_to": one("date_to").strip()[:10] if form.date_to else "",
        "date_field": form.date_field,
        "q": form.q,
        "account": form.account,
        "awaiting": form.awaiting,
        "overdue": form.overdue,
    }
    return form
