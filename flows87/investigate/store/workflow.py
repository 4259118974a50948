"""The investigation workflow: assign, comment, status changes, closing, report approval.

Every function takes the acting `User`, checks its role (here, not only in the web layer),
changes the case and appends an audit entry with the state before and after. None commits.

Status:   new -> in_review -> escalated -> closed          (and in_review -> closed,
          escalated -> in_review by a supervisor, closed -> in_review by `reopen`)
Closing:  a disposition (reported, false_positive, no_further_action) and a reason are
          required. "reported" (an STR was filed) needs a supervisor's approval: an
          investigator calls `request_report`, a supervisor other than the requester calls
          `decide_report(approve=True)`, which closes the case.
Roles:    investigator: comments on any case; takes unassigned cases (`assign` to self); works
          (status, close, request report) on cases assigned to them or unassigned.
          supervisor: everything an investigator can, on any case, plus assigning others,
          closing escalated cases, de-escalating, reopening and deciding report approvals.
          admin: what a supervisor can, plus user management (flows87.investigate.store.users).
"""

from __future__ import annotations

import json
from typing import Any, Literal, overload

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.investigate.store import audit
from flows87.investigate.store.errors import InvalidInput, NotFound, PermissionDenied, WorkflowError
from flows87.investigate.store.models import (
    DISPOSITIONS,
    STATUSES,
    Approval,
    Assignment,
    Case,
    Disposition,
    Note,
    User,
    utcnow,
)

RANK = {"investigator": 1, "supervisor": 2, "admin": 3}
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"in_review"}),
    "in_review": frozenset({"escalated", "closed"}),
    "escalated": frozenset({"in_review", "closed"}),
    "closed": frozenset({"in_review"}),
}
DISPOSITION_LABELS = {
    "reported": "reported (STR filed)",
    "false_positive": "false positive",
    "no_further_action": "no further action",
}
MAX_TEXT = 20_000


def _active(actor: User) -> None:
    if not isinstance(actor, User):
        raise PermissionDenied("no acting user")
    if not actor.active:
        raise PermissionDenied(f"user {actor.username} is deactivated")


def _at_least(actor: User, role: str, what: str) -> None:
    _active(actor)
    if RANK.get(actor.role, 0) < RANK[role]:
        raise PermissionDenied(
            f"{actor.username} ({actor.role}) cannot {what}: {role} or above only"
        )


def is_supervisor(actor: User) -> bool:
    return RANK.get(actor.role, 0) >= RANK["supervisor"]


def _works_on(actor: User, case: Case, what: str) -> None:
    """Investigators act on their own (or unassigned) cases; supervisors on any."""
    _active(actor)
    if is_supervisor(actor):
        return
    if case.assignee_id is not None and case.assignee_id != actor.id:
        raise PermissionDenied(
            f"{actor.username} cannot {what} case {case.case_id}: it is assigned to someone else"
        )


@overload
def _text(value: str | None, what: str, *, required: Literal[True] = ...) -> str: ...
@overload
def _text(value: str | None, what: str, *, required: bool) -> str | None: ...
def _text(value: str | None, what: str, *, required: bool = True) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{what} is longer than {MAX_TEXT} characters")
    return value


def get_case(session: Session, case_id: str, *, lock: bool = False) -> Case:
    stmt = select(Case).where(Case.case_id == case_id)
    if lock:
        stmt = stmt.with_for_update()
    case = session.scalar(stmt)
    if case is None:
        raise NotFound(f"no case {case_id!r}")
    return case


def pending_approval(session: Session, case_id: str) -> Approval | None:
    return session.scalar(
        select(Approval).where(Approval.case_id == case_id, Approval.state == "pending")
    )


def approvers(session: Session, case_id: str) -> list[str]:
    """Who may decide the case's pending report: every active supervisor or admin but the one
    who asked (the four-eyes rule). Empty when nothing is pending."""
    pending = pending_approval(session, case_id)
    if pending is None:
        return []
    return list(
        session.scalars(
            select(User.username)
            .where(
                User.active.is_(True),
                User.role.in_([r for r, n in RANK.items() if n >= RANK["supervisor"]]),
                User.id != pending.requested_by_id,
            )
            .order_by(User.username)
        )
    )


def _username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user.username if user else None


def case_state(session: Session, case: Case) -> dict[str, Any]:
    """The workflow fields of a case as the audit log records them."""
    pending = pending_approval(session, case.case_id)
    return {
        "status": case.status,
        "assignee": _username(session, case.assignee_id),
        "disposition": case.disposition,
        "close_reason": case.close_reason,
        "pending_approval": pending.id if pending else None,
    }


def _audit(
    session: Session, actor: User, action: str, case: Case, before: dict, extra: dict | None = None
) -> None:
    session.flush()
    after = case_state(session, case)
    if extra:
        after.update(extra)
    audit.record(session, actor, action, "case", case.case_id, before, after)


def assign(session: Session, actor: User, case_id: str, assignee: str | None) -> Case:
    """Give the case to `assignee` (a username), or unassign with None."""
    case = get_case(session, case_id, lock=True)
    _active(actor)
    target: User | None = None
    if assignee is not None:
        target = session.scalar(select(User).where(User.username == assignee))
        if target is None:
            raise NotFound(f"no user {assignee!r}")
        if not target.active:
            raise InvalidInput(f"user {assignee} is deactivated")
    if not is_supervisor(actor):
        mine = target is not None and target.id == actor.id
        free = case.assignee_id is None or case.assignee_id == actor.id
        releasing = target is None and case.assignee_id == actor.id
        if not ((mine and free) or releasing):
            raise PermissionDenied(
                f"{actor.username} (investigator) can only take an unassigned case or release "
                "their own; a supervisor assigns cases to others"
            )
    new_id = target.id if target else None
    if new_id == case.assignee_id:
        return case
    before = case_state(session, case)
    case.assignee_id = new_id
    case.updated_at = utcnow()
    session.add(
        Assignment(
            case_id=case.case_id,
            assignee_id=new_id,
            assigned_by_id=actor.id,
            assigned_at=case.updated_at,
        )
    )
    _audit(session, actor, "case.assigned" if target else "case.unassigned", case, before)
    return case


def comment(session: Session, actor: User, case_id: str, body: str) -> Note:
    """A note on the case (any active user)."""
    _active(actor)
    case = get_case(session, case_id)
    text = _text(body, "a comment")
    note = Note(case_id=case.case_id, author_id=actor.id, created_at=utcnow(), body=text)
    session.add(note)
    session.flush()
    audit.record(
        session, actor, "case.commented", "case", case.case_id, {}, {"note": note.id, "body": text}
    )
    return note


def change_status(
    session: Session, actor: User, case_id: str, status: str, *, reason: str | None = None
) -> Case:
    """Move the case along new -> in_review -> escalated (and escalated -> in_review by a
    supervisor). Closing goes through `close_case`, reopening through `reopen`."""
    if status not in STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(STATUSES)}")
    case = get_case(session, case_id, lock=True)
    if status == "closed":
        raise InvalidInput("closing needs a disposition and a reason: use close_case")
    if case.status == "closed":
        raise WorkflowError(f"case {case_id} is closed: a supervisor can reopen it")
    if status == case.status or status not in TRANSITIONS[case.status]:
        allowed = ", ".join(sorted(TRANSITIONS[case.status])) or "none"
        raise WorkflowError(
            f"case {case_id} cannot go from {case.status} to {status} (allowed: {allowed})"
        )
    if case.status == "escalated":
        _at_least(actor, "supervisor", "send an escalated case back to review")
    _works_on(actor, case, f"move to {status}")
    note = _text(reason, "a reason", required=False)
    before = case_state(session, case)
    if status == "in_review" and case.assignee_id is None and not is_supervisor(actor):
        case.assignee_id = actor.id  # starting the review takes the case
        session.add(
            Assignment(
                case_id=case.case_id,
                assignee_id=actor.id,
                assigned_by_id=actor.id,
                assigned_at=utcnow(),
            )
        )
    case.status = status
    case.updated_at = utcnow()
    extra = (
        {"reason": note, "note": _status_note(session, actor, case, status, note)} if note else None
    )
    _audit(session, actor, f"case.status.{status}", case, before, extra)
    return case


STATUS_WORDS = {"in_review": "in review", "escalated": "escalated", "reopened": "reopened"}


def _status_note(session: Session, actor: User, case: Case, status: str, text: str) -> int:
    """The text typed beside a status change, kept among the case's notes (not only in the
    audit entry), saying which change it went with."""
    note = Note(
        case_id=case.case_id,
        author_id=actor.id,
        created_at=case.updated_at,
        body=f"[{STATUS_WORDS.get(status, status)}] {text}",
    )
    session.add(note)
    session.flush()
    return note.id


def _close(
    session: Session,
    actor: User,
    case: Case,
    disposition: str,
    reason: str,
    approval: Approval | None = None,
) -> Disposition:
    now = utcnow()
    case.status = "closed"
    case.disposition = disposition
    case.close_reason = reason
    case.closed_at = now
    case.closed_by_id = actor.id
    case.updated_at = now
    row = Disposition(
        case_id=case.case_id,
        disposition=disposition,
        reason=reason,
        decided_by_id=actor.id,
        decided_at=now,
        approval_id=approval.id if approval else None,
        risk_score=case.risk_score,
        accounts=json.dumps(
            [a for (a,) in session.execute(_accounts_stmt(case.case_id))], ensure_ascii=False
        ),
        signal_ids=case.signal_ids,
    )
    session.add(row)
    return row


def _accounts_stmt(case_id: str):
    from flows87.investigate.store.models import CaseAccount

    return (
        select(CaseAccount.account_id)
        .where(CaseAccount.case_id == case_id)
        .order_by(CaseAccount.position)
    )


def _closable(session: Session, actor: User, case: Case) -> None:
    if case.status not in ("in_review", "escalated"):
        raise WorkflowError(
            f"case {case.case_id} is {case.status}: only a case in review or escalated can be closed"
        )
    if case.status == "escalated":
        _at_least(actor, "supervisor", "close an escalated case")
    _works_on(actor, case, "close")


def close_case(session: Session, actor: User, case_id: str, disposition: str, reason: str) -> Case:
    """Close as false_positive or no_further_action with a reason. "reported" needs approval:
    use request_report (and a supervisor's decide_report)."""
    if disposition not in DISPOSITIONS:
        raise InvalidInput(f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}")
    text = _text(reason, "a reason to close")
    case = get_case(session, case_id, lock=True)
    _closable(session, actor, case)
    if disposition == "reported":
        raise WorkflowError(
            f"closing case {case_id} as reported (STR filed) needs a supervisor's approval: "
            "request it with request_report"
        )
    if pending_approval(session, case_id) is not None:
        raise WorkflowError(
            f"case {case_id} has a report approval pending: a supervisor must decide it first"
        )
    before = case_state(session, case)
    _close(session, actor, case, disposition, text)
    _audit(session, actor, "case.closed", case, before)
    return case


def request_report(session: Session, actor: User, case_id: str, reason: str) -> Approval:
    """Ask a supervisor to approve closing the case as reported (STR filed)."""
    text = _text(reason, "a reason for the report")
    case = get_case(session, case_id, lock=True)
    if case.status not in ("in_review", "escalated"):
        raise WorkflowError(
            f"case {case_id} is {case.status}: a report can be requested in review or escalated"
        )
    _works_on(actor, case, "request a report on")
    if pending_approval(session, case_id) is not None:
        raise WorkflowError(f"case {case_id} already has a report approval pending")
    before = case_state(session, case)
    approval = Approval(
        case_id=case_id,
        disposition="reported",
        reason=text,
        requested_by_id=actor.id,
        requested_at=utcnow(),
        state="pending",
    )
    session.add(approval)
    case.updated_at = approval.requested_at
    _audit(session, actor, "case.report_requested", case, before, {"reason": text})
    return approval


def decide_report(
    session: Session,
    actor: User,
    case_id: str,
    approve: bool,
    comment: str | None = None,
) -> Approval:
    """A supervisor (not the requester) approves, closing the case as reported, or rejects
    (a comment saying why is required) and the case stays open."""
    _at_least(actor, "supervisor", "approve or reject a report")
    case = get_case(session, case_id, lock=True)
    approval = pending_approval(session, case_id)
    if approval is None:
        raise WorkflowError(f"case {case_id} has no report approval pending")
    if approval.requested_by_id == actor.id:
        raise PermissionDenied(
            f"{actor.username} requested this report and cannot approve or reject it "
            "(four-eyes rule: another supervisor decides)"
        )
    note = _text(comment, "a comment on the rejection", required=not approve)
    before = case_state(session, case)
    approval.state = "approved" if approve else "rejected"
    approval.decided_by_id = actor.id
    approval.decided_at = utcnow()
    approval.comment = note
    if approve:
        reason = approval.reason + (f"\nApproved by {actor.username}: {note}" if note else "")
        _close(session, actor, case, "reported", reason, approval)
        action = "case.report_approved"
    else:
        case.updated_at = approval.decided_at
        action = "case.report_rejected"
    _audit(session, actor, action, case, before, {"approval": approval.id, "comment": note})
    return approval


def reopen(session: Session, actor: User, case_id: str, reason: str) -> Case:
    """A supervisor puts a closed case back in review (its dispositions stay in history)."""
    _at_least(actor, "supervisor", "reopen a case")
    text = _text(reason, "a reason to reopen")
    case = get_case(session, case_id, lock=True)
    if case.status != "closed":
        raise WorkflowError(f"case {case_id} is {case.status}, not closed")
    before = case_state(session, case)
    case.status = "in_review"
    case.disposition = None
    case.close_reason = None
    case.closed_at = None
    case.closed_by_id = None
    case.updated_at = utcnow()
    note = _status_note(session, actor, case, "reopened", text)
    _audit(session, actor, "case.reopened", case, before, {"reason": text, "note": note})
    return case


def allowed_actions(session: Session, actor: User, case: Case) -> set[str]:
    """What the web layer may offer this user on this case (the functions check again)."""
    if not actor.active:
        return set()
    sup = is_supervisor(actor)
    own = case.assignee_id in (None, actor.id)
    out = {"comment"}
    if sup or case.assignee_id in (None, actor.id):
        out.add("assign")
    pending = pending_approval(session, case.case_id)
    if case.status == "closed":
        if sup:
            out.add("reopen")
        return out
    if sup or own:
        for status in TRANSITIONS[case.status] - {"closed"}:
            if case.status == "escalated" and not sup:
                continue
            out.add(f"status:{status}")
        if (
            case.status in ("in_review", "escalated")
            and (sup or case.status != "escalated")
            and pending is None
        ):
            out.update({"close", "request_report"})
    if pending is not None and sup and pending.requested_by_id != actor.id:
        out.add("decide_report")
    return out
