"""The case queue: /cases with its filters, sort and pages (and / going there).

The filters are read from the query string as a browser's form sends them (queue_form.py): an
empty box means no filter, a bad value is a message on the page (status 400), never a JSON
error. Without a status filter the queue lists the open cases only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from flows87.investigate.store import UNASSIGNED, CasePage, InvalidInput, list_cases, list_users
from flows87.investigate.web import data
from flows87.investigate.web.dependencies import CurrentUser, SettingsDep, StoreDep, render
from flows87.investigate.web.queue_form import OPEN_STATUSES, PAGE_SIZES, parse_queue_form

router = APIRouter()


@router.get("/")
def home(user: CurrentUser) -> Response:
    return RedirectResponse("/cases", status_code=303)


@router.get("/cases", response_class=HTMLResponse)
def queue(request: Request, user: CurrentUser, store: StoreDep, settings: SettingsDep) -> Response:
    form = parse_queue_form(request.query_params)
    size = settings.page_size if form.page_size is None else form.page_size
    filters = form.raw
    sort = form.sort
    who = user.username if form.assignee == "me" else form.assignee
    due_days = data.case_due_days()
    now = datetime.now(UTC)
    result = CasePage([], 0, form.page, size)
    with store.session() as s:
        if not form.errors:
            try:
                result = list_cases(
                    s,
                    status=form.statuses,
                    typology=form.typology or None,
                    assignee=who or None,
                    disposition=form.disposition or None,
                    min_risk=form.min_risk,
                    max_risk=form.max_risk,
                    date_from=form.date_from,
                    date_to=form.date_to,
                    date_field=form.date_field,
                    account=form.account or None,
                    search=form.q or None,
                    awaiting_approval=True if form.awaiting == "1" else None,
                    first_seen_before=now - timedelta(days=due_days) if form.overdue else None,
                    sort=sort,
                    page=form.page,
                    page_size=size,
                )
            except InvalidInput as exc:
                form.errors.append(exc.message)
        kinds = data.typologies(s)
        users = [u.username for u in list_users(s)]
        counts = data.status_counts(s)
        nav = {"awaiting": data.awaiting_approval_count(s)}
    for item in result.items:
        item.update(data.case_age(item, now, due_days))

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
        desc_first = key not in ("case_id", "status", "typology", "first_seen")
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
            "shown_statuses": form.statuses,
            "open_statuses": OPEN_STATUSES,
            "errors": form.errors,
            "typologies": kinds,
            "users": users,
            "counts": counts,
            "sort": sort,
            "link": link,
            "sort_link": sort_link,
            "sort_mark": sort_mark,
            "page_size": size,
            "page_sizes": sorted({*PAGE_SIZES, size}),
            "unassigned": UNASSIGNED,
            "due_days": due_days,
            "nav": nav,
        },
        status_code=400 if form.errors else 200,
        user=user,
    )
