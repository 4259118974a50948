"""A case's workflow actions: assign, comment, status, close, decide a report, reopen.

Every one is a CSRF-checked POST that redirects back to the case; the store's workflow
functions check the acting user's role again."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from flows87.investigate.store import (
    InvalidInput,
    assign,
    change_status,
    close_case,
    comment,
    decide_report,
    reopen,
    request_report,
)
from flows87.investigate.store.workflow import approvers
from flows87.investigate.web.dependencies import (
    CurrentUser,
    Supervisor,
    acting,
    case_url,
    csrf_protect,
    flash,
)
from flows87.investigate.web.templating import label

router = APIRouter()


def waiting_for(names: list[str]) -> str:
    """Whose turn it is on a requested report (four eyes: not the one who asked)."""
    if not names:
        return (
            "waiting for approval by another supervisor, but there is none: an admin must add a "
            "second supervisor (the one who asked cannot approve)."
        )
    shown = names[:6]
    who = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    more = f" (or {len(names) - 6} more)" if len(names) > 6 else ""
    return f"waiting for approval by another supervisor: {who}{more}."


@router.post("/cases/{case_id}/assign", dependencies=[Depends(csrf_protect)])
def do_assign(
    request: Request,
    case_id: str,
    user: CurrentUser,
    assignee: str = Form("", max_length=64),
) -> Response:
    target = user.username if assignee == "me" else (assignee or None)
    with acting(request, user) as (s, actor):
        assign(s, actor, case_id, target)
    flash(request, "ok", f"Case assigned to {target}." if target else "Case unassigned.")
    return RedirectResponse(case_url(case_id), status_code=303)


@router.post("/cases/{case_id}/comment", dependencies=[Depends(csrf_protect)])
def do_comment(
    request: Request,
    case_id: str,
    user: CurrentUser,
    body: str = Form("", max_length=20_000),
) -> Response:
    with acting(request, user) as (s, actor):
        comment(s, actor, case_id, body)
    flash(request, "ok", "Comment added.")
    return RedirectResponse(case_url(case_id) + "#notes", status_code=303)


@router.post("/cases/{case_id}/status", dependencies=[Depends(csrf_protect)])
def do_status(
    request: Request,
    case_id: str,
    user: CurrentUser,
    status: str = Form(..., max_length=16),
    reason: str = Form("", max_length=20_000),
) -> Response:
    with acting(request, user) as (s, actor):
        change_status(s, actor, case_id, status, reason=reason or None)
    kept = " Your note is kept in the case's notes." if reason.strip() else ""
    flash(request, "ok", f"Status changed to {label(status)}.{kept}")
    return RedirectResponse(case_url(case_id), status_code=303)


@router.post("/cases/{case_id}/close", dependencies=[Depends(csrf_protect)])
def do_close(
    request: Request,
    case_id: str,
    user: CurrentUser,
    disposition: str = Form("", max_length=32),
    reason: str = Form("", max_length=20_000),
) -> Response:
    """Closes the case, except as reported: that asks a supervisor's approval first."""
    if not reason.strip():
        raise InvalidInput("a reason is required to close a case")
    with acting(request, user) as (s, actor):
        if disposition == "reported":
            request_report(s, actor, case_id, reason)
            message = "Report (STR filed) requested: " + waiting_for(approvers(s, case_id))
        else:
            close_case(s, actor, case_id, disposition, reason)
            message = f"Case closed as {label(disposition)}."
    flash(request, "ok", message)
    return RedirectResponse(case_url(case_id), status_code=303)


@router.post("/cases/{case_id}/approval", dependencies=[Depends(csrf_protect)])
def do_decide(
    request: Request,
    case_id: str,
    user: Supervisor,
    decision: str = Form(..., max_length=16),
    comment_text: str = Form("", alias="comment", max_length=20_000),
) -> Response:
    if decision not in ("approve", "reject"):
        raise InvalidInput("decision must be approve or reject")
    with acting(request, user) as (s, actor):
        decide_report(s, actor, case_id, decision == "approve", comment_text or None)
    flash(
        request,
        "ok",
        "Report approved: the case is closed as reported (STR filed)."
        if decision == "approve"
        else "Report rejected: the case stays open.",
    )
    return RedirectResponse(case_url(case_id), status_code=303)


@router.post("/cases/{case_id}/reopen", dependencies=[Depends(csrf_protect)])
def do_reopen(
    request: Request,
    case_id: str,
    user: Supervisor,
    reason: str = Form("", max_length=20_000),
) -> Response:
    with acting(request, user) as (s, actor):
        reopen(s, actor, case_id, reason)
    flash(request, "ok", "Case reopened (in review).")
    return RedirectResponse(case_url(case_id), status_code=303)
