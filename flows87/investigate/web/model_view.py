"""The case page's "Model" card in words: the learned scorer's reasons with the rules' titles,
and what the model was trained on.

The pipeline writes each reason as `<feature> <value> (<weight>)` (flows87.pipeline.learn.model.
describe): the feature's value on the case's highest-scored account and its SHAP contribution
to the log-odds. A `signal <rule id>` feature is named here by the rule's title.
"""

from __future__ import annotations

import math
import re
from typing import Any

REASON = re.compile(r"^(?P<body>.*\S) \((?P<weight>[+-]\d+(?:\.\d+)?)\)$")
SIGNAL = re.compile(r"^signal (?P<id>\S+) (?P<value>\S+)$")


def number(text: str) -> str:
    """A value as the pipeline wrote it ('3.608e+04', '9,047', 'missing') for reading."""
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        return "not known" if text == "missing" else text
    if not math.isfinite(value):
        return text
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def reason(text: str, titles: dict[str, str]) -> dict[str, Any]:
    """One reason: `text` in words, `weight` (log-odds, None if unreadable), and for a rule's
    signal its `signal_id` and `title` (None where the catalogue has none)."""
    m = REASON.match(text)
    if m is None:
        return {"text": text, "weight": None, "signal_id": None, "title": None}
    body, weight = m.group("body"), float(m.group("weight"))
    sig = SIGNAL.match(body)
    if sig is not None:
        sid, value = sig.group("id"), sig.group("value")
        title = titles.get(sid)
        said = "no signal on this account" if value == "missing" else f"scored {number(value)}"
        return {"text": said, "weight": weight, "signal_id": sid, "title": title}
    label, _, value = body.rpartition(" ")
    said = f"{label}: {number(value)}" if label else body
    return {"text": said, "weight": weight, "signal_id": None, "title": None}


def trained_on(model: dict[str, Any] | None) -> str | None:
    """'trained on 212 decided accounts (57 reported) before 2026-03-01, and on 5,000 accounts
    no case named (presumed negatives)', or None when the store has no description of the
    model."""
    if model is None:
        return None
    labelled, positives = model.get("labelled"), model.get("positives")
    if labelled is None:
        text = "trained on decided accounts"
    else:
        text = f"trained on {labelled:,} decided account{'' if labelled == 1 else 's'}"
    if positives is not None:
        text += f" ({positives:,} reported)"
    cutoff = model.get("cutoff")
    if cutoff:
        text += f" before {str(cutoff)[:10]}"
    negatives = model.get("negatives")
    if labelled is not None and positives is not None and negatives is not None:
        presumed = int(negatives) - (int(labelled) - int(positives))
        if presumed > 0:  # learning.yaml presumed_negatives: counted among the negatives
            text += f", and on {presumed:,} accounts no case named (presumed negatives)"
    return text


def model_card(found: dict[str, Any] | None, titles: dict[str, str]) -> dict[str, Any] | None:
    """What the card shows; None when no model scored the case."""
    if found is None:
        return None
    return {
        **found,
        "reasons": [reason(r, titles) for r in found["reasons"]],
        "trained_on": trained_on(found["model"]),
        "method": (found["model"] or {}).get("method"),
    }
