"""The learned scorer's view of a case, as the case page's "Model" card shows it (issue 16):
the learned score beside the rules' and detectors' risk, the blend, and which model it was."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.investigate.store.errors import NotFound
from flows87.investigate.store.models import Case, LearnedModel


def _reasons(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return [text or ""]
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def case_model(session: Session, case_id: str) -> dict[str, Any] | None:
    """learned_score, today_score, risk_score (the blend), reasons (the model's sentences) and
    the model (version, method, positives, negatives, labelled, cutoff; None when the store
    has no description of that version); None when no model scored the case."""
    row = session.execute(
        select(
            Case.learned_score,
            Case.today_score,
            Case.risk_score,
            Case.learned_reasons,
            Case.model_version,
        ).where(Case.case_id == case_id)
    ).first()
    if row is None:
        raise NotFound(f"no case {case_id!r}")
    learned, today, risk, reasons, version = row
    if learned is None:
        return None
    model = session.get(LearnedModel, version) if version else None
    return {
        "learned_score": learned,
        "today_score": today,
        "risk_score": risk,
        "reasons": _reasons(reasons),
        "version": version,
        "model": (
            {
                "version": model.version,
                "method": model.method,
                "positives": model.positives,
                "negatives": model.negatives,
                "labelled": model.labelled,
                "cutoff": model.cutoff,
            }
            if model is not None
            else None
        ),
    }
