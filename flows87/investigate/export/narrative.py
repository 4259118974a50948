"""The report's narrative from what people wrote on the case, not canned text.

`reason` (why the activity is suspicious) is the closing decision's reason (for a reported case:
the investigator's request and the approving supervisor's comment) followed by the evidence
summary the pipeline wrote; `action` (what the reporting entity did) is the case's notes in the
order they were written. Both are cut to the schema's limit with a marker that says so.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flows87.investigate.store.workflow import DISPOSITION_LABELS

MAX_COMMENT = 8000  # goAML's comments_type (reason, action): maxLength 8000
# XML 1.0 refuses these characters: a note typed with one must not fail the export
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: Any) -> str:
    """`value` as text XML 1.0 can carry (control characters dropped)."""
    return _NOT_XML.sub("", str(value))


def clip(text: str, limit: int = MAX_COMMENT, *, case_id: str | None = None) -> str:
    """`text` cut to `limit` characters, ending with a marker naming what was left out."""
    text = xml_text(text)
    if len(text) <= limit:
        return text
    where = f"; the full text is in case {case_id}" if case_id else ""
    marker = f"\n[... cut: {len(text)} characters, the schema allows {limit}{where}]"
    if len(marker) >= limit:
        return text[: limit - 1] + "…"
    return text[: limit - len(marker)].rstrip() + marker


def _day(ts: datetime | None) -> str:
    return ts.strftime("%Y-%m-%d %H:%M UTC") if ts else "an unknown time"


def report_reason(detail: dict[str, Any]) -> str:
    """The closing decision's reason and the evidence summary."""
    case = detail["case"]
    lines = [f"Case {case['case_id']} (flows87 risk score {case['risk_score']:.3f})."]
    decisions = detail.get("dispositions") or []
    last = decisions[-1] if decisions else None
    if case.get("status") == "closed" and last is not None:
        label = DISPOSITION_LABELS.get(last["disposition"], last["disposition"])
        lines.append(f"Closed as {label} by {last['decided_by']} on {_day(last['decided_at'])}.")
        approval = _approval(detail, last.get("approval_id"))
        if approval is not None:
            lines.append(
                f"Investigator's reason ({approval['requested_by']}, "
                f"{_day(approval['requested_at'])}): {approval['reason']}"
            )
            if approval.get("comment"):
                lines.append(f"Approved by {approval['decided_by']}: {approval['comment']}")
            else:
                lines.append(f"Approved by {approval['decided_by']}.")
        else:
            lines.append(f"Reason: {last['reason']}")
    elif case.get("close_reason"):
        lines.append(f"Reason: {case['close_reason']}")
    else:
        lines.append(f"No closing decision recorded (status: {case.get('status')}).")
    if case.get("summary"):
        lines.append(f"Evidence: {case['summary']}")
    return clip("\n".join(lines), case_id=case["case_id"])


def report_action(detail: dict[str, Any]) -> str | None:
    """The case's notes, oldest first (None: nobody wrote one)."""
    notes = detail.get("notes") or []
    if not notes:
        return None
    lines = ["Investigation notes:"]
    lines += [f"{_day(n['created_at'])}, {n['author']}: {n['body']}" for n in notes]
    return clip("\n".join(lines), case_id=detail["case"]["case_id"])


def _approval(detail: dict[str, Any], approval_id: int | None) -> dict[str, Any] | None:
    if approval_id is None:
        return None
    return next((a for a in detail.get("approvals") or [] if a["id"] == approval_id), None)
