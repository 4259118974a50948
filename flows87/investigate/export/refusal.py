"""Who may export a case as an STR: the four-eyes rule applied to the report itself.

An STR goes to the FIU in the reporting entity's name, so an investigator may export only a case
closed as "reported" through an approval another supervisor gave (workflow.decide_report); a
supervisor or admin may export any case, and the audit entry says it was on their authority.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.investigate.store.models import Approval, Case, Disposition
from flows87.investigate.store.workflow import RANK, get_case

APPROVED = "approved report"


def _approved_report(session: Session, case: Case) -> str | None:
    """Why the case is not an approved report (None: it is one)."""
    if case.status != "closed" or case.disposition != "reported":
        state = case.status if case.status != "closed" else f"closed as {case.disposition}"
        return (
            f"case {case.case_id} is {state}: an STR can be exported once the case is closed as "
            "reported (STR filed) with a supervisor's approval, or by a supervisor or admin"
        )
    last = session.scalar(
        select(Disposition)
        .where(Disposition.case_id == case.case_id)
        .order_by(Disposition.decided_at.desc(), Disposition.id.desc())
        .limit(1)
    )
    approval = (
        session.get(Approval, last.approval_id)
        if last is not None and last.approval_id is not None
        else None
    )
    if (
        last is None
        or last.disposition != "reported"
        or approval is None
        or approval.state != "approved"
        or approval.decided_by_id in (None, approval.requested_by_id)
    ):
        return (
            f"case {case.case_id} is closed as reported but no supervisor's approval of the "
            "report is recorded: a supervisor or admin must export it"
        )
    return None


def export_refusal(session: Session, case_id: str, user_role: str) -> str | None:
    """Why a user of `user_role` may not export this case's STR (None: allowed). Raises
    NotFound for an unknown case."""
    case = get_case(session, case_id)
    if RANK.get(user_role, 0) >= RANK["supervisor"]:
        return None
    return _approved_report(session, case)


def export_basis(session: Session, case_id: str, user_role: str) -> str:
    """What the audit entry records as the export's authority: an approved report, or the
    supervisor's/admin's role for a case that is not one."""
    case = get_case(session, case_id)
    if _approved_report(session, case) is None:
        return APPROVED
    return f"{user_role} (the case is not an approved report)"
