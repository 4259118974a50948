"""The case queue: /cases with its filters, sort and pages (and / going there)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flows87.investigate.store import UNASSIGNED, list_cases, list_users
from flows87.investigate.web import data
from flows87.investigate.web.dependencies import CurrentUser, SettingsDep, StoreDep, render

router = APIRouter()


@router.get("/")
def home(user: CurrentUser) -> Response:
    return RedirectResponse("/cases", status_code=303)


@router.get("/cases", response_class=HTMLResponse)
def queue(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    status: list[str] = Query(default=[]),
    typology: str = Query("", max_length=64),
    assignee: str = Query("", max_length=64),
    disposition: str = Query("", max_length=32),
    min_risk: float | None = Query(None, ge=0, le=1000),
    max_risk: float | None = Query(None, ge=0, le=1000),
    date_from: str = Query("", max_length=10),
    date_to: str = Query("", max_length=10),
    date_field: str = Query("activity", max_length=16),
    q: str = Query("", max_length=128),
    account: str = Query("", max_length=128),
    awaiting: str = Query("", max_length=1),
    sort: str = Query("-risk", max_length=16),
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int | None = Query(None, ge=1, le=200),  # None: the settings' page size
) -> Response:
    size = settings.page_size if page_size is None else page_size
    status = [x for x in status if x][:10]
    who = user.username if assignee == "me" else assignee
    filters = {
        "status": status,
        "typology": typology,
        "assignee": assignee,
        "disposition": disposition,
        "min_risk": "" if min_risk is None else min_risk,
        "max_risk": "" if max_risk is None else max_risk,
        "date_from": date_from,
        "date_to": date_to,
        "date_field": date_field,
        "q": q,
        "account": account,
        "awaiting": awaiting,
    }
    with store.session() as s:
        result = list_cases(
            s,
            status=status or None,
            typology=typology or None,
            assignee=who or None,
            disposition=disposition or None,
            min_risk=min_risk,
            max_risk=max_risk,
            date_from=data.parse_day(date_from, "from date"),
            date_to=data.parse_day(date_to, "to date", end=True),
            date_field=date_field or "activity",
            account=account or None,
            search=q or None,
            awaiting_approval=True if awaiting == "1" else None,
            sort=sort,
            page=page,
            page_size=size,
        )
        kinds = data.typologies(s)
        users = [u.username for u in list_users(s)]
        counts = data.status_counts(s)
        nav = {"awaiting": data.awaiting_approval_count(s)}

    def link(**changes: Any) -> str:
        """This queue with some parameters changed, leaving out those at their default."""
        params = {k: v for k, v in filters.items() if v not in ("", None, [])}
        params.update(sort=sort, page_size=size)
        params.update(changes)
        if params.get("date_field") == "activity":
            params.pop("date_field")
        if params.get("page_size") == settings.page_size:
            params.pop("page_size")
        if params.get("sort") == "-risk":
            params.pop("sort")
        if params.get("page") == 1:
            params.pop("page")
        return "/cases?" + urlencode(params, doseq=True)

    def sort_link(key: str) -> str:
        desc_first = key not in ("case_id", "status", "typology")
        if sort.lstrip("-") == key:
            new = key if sort.startswith("-") else f"-{key}"
        else:
            new = f"-{key}" if desc_first else key
        return link(sort=new, page=1)

    def sort_mark(key: str) -> str:
        if sort.lstrip("-") != key:
            return ""
        return "▼" if sort.startswith("-") else "▲"

    return render(
        request,
        "queue.html",
        {
            "page": result,
            "filters": filters,
            "typologies": kinds,
            "users": users,
            "counts": counts,
            "sort": sort,
            "link": link,
            "sort_link": sort_link,
            "sort_mark": sort_mark,
            "page_size": size,
            "unassigned": UNASSIGNED,
            "nav": nav,
        },
        user=user,
    )
