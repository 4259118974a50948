"""The audit log and rule outcomes pages.

/audit: the audit log with filters and pages, and verifying its hash chain (supervisors, admins).
/outcomes: which rules produced the cases investigators decided, and how."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from flows87.investigate.store import audit_entries, check_audit, signal_outcomes
from flows87.investigate.web import data
from flows87.investigate.web.dependencies import (
    CurrentUser,
    Forbidden,
    SettingsDep,
    StoreDep,
    render,
)

AUDIT_PAGE = 50
"""Entries per page of the audit log."""

router = APIRouter()


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    case: str = Query("", max_length=128),
    actor: str = Query("", max_length=64),
    page: int = Query(1, ge=1, le=1_000_000),
    verify: str = Query("", max_length=1),
) -> Response:
    size = AUDIT_PAGE
    # investigators see the cases' history; supervisors and admins also users and sign-ins
    entity_type = "case" if (case or not user.at_least("supervisor")) else None
    status = None
    with store.session() as s:
        rows = audit_entries(
            s,
            entity_type=entity_type,
            entity_id=case or None,
            actor=actor or None,
            limit=size + 1,
            offset=(page - 1) * size,
        )
        if verify == "1":
            if not user.at_least("supervisor"):
                raise Forbidden("verifying the audit chain is for supervisors and admins")
            status = check_audit(s)
        nav = {"awaiting": data.awaiting_approval_count(s)}
    more = len(rows) > size
    params = {k: v for k, v in {"case": case, "actor": actor}.items() if v}
    return render(
        request,
        "audit.html",
        {
            "rows": rows[:size],
            "filters": {"case": case, "actor": actor},
            "page": page,
            "prev_link": "/audit?" + urlencode({**params, "page": page - 1}) if page > 1 else None,
            "next_link": "/audit?" + urlencode({**params, "page": page + 1}) if more else None,
            "verify_link": "/audit?" + urlencode({**params, "verify": 1}),
            "status": status,
            "nav": nav,
        },
        user=user,
    )


@router.get("/outcomes", response_class=HTMLResponse)
def outcomes_page(
    request: Request, user: CurrentUser, store: StoreDep, settings: SettingsDep
) -> Response:
    with store.session() as s:
        rows = signal_outcomes(s).to_dicts()
    try:
        from flows87.investigate.store import rule_info

        titles = {k: v["title"] for k, v in rule_info(settings.rules_dir).items()}
    except Exception:  # descriptions are a nicety here
        titles = {}
    return render(request, "outcomes.html", {"rows": rows, "titles": titles}, user=user)
