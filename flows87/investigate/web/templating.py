"""The case app's Jinja2 templates: the environment (autoescaped), its filters and its globals.

The filters format what the store returns (UTC times, money, scores, workflow labels, an audit
entry's changes) so the templates hold no logic beyond loops and conditions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from flows87 import __version__
from flows87.investigate.store import DISPOSITIONS, STATUSES

TEMPLATES = Path(__file__).resolve().parent / "templates"
DISPOSITION_LABELS = {
    "reported": "reported (STR filed)",
    "false_positive": "false positive",
    "no_further_action": "no further action",
}
STATUS_LABELS = {
    "new": "new",
    "in_review": "in review",
    "escalated": "escalated",
    "closed": "closed",
}


def dt(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as UTC text (naive times are taken as UTC, as the store writes them)."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime(fmt) + (" UTC" if "%H" in fmt else "")
    return str(value)


def money(value: Any) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def score(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return str(value)


def label(value: Any) -> str:
    """A status, disposition or field name as investigators read it."""
    if value is None:
        return ""
    text = str(value)
    return DISPOSITION_LABELS.get(text) or STATUS_LABELS.get(text) or text.replace("_", " ")


def pretty(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(pretty(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{label(k)}: {pretty(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.2f}"
    if value is None:
        return "—"
    return str(value)


def changes(before: Any, after: Any) -> list[tuple[str, Any, Any, bool]]:
    """(field, before, after, had_before) for each field an audit entry changed or set."""
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    out = []
    for key in list(after) + [k for k in before if k not in after]:
        old, new = before.get(key), after.get(key)
        if key in before and old == new:
            continue
        if key in ("status", "disposition"):
            old, new = (label(old) if old else old), (label(new) if new else new)
        out.append((key, old, new, key in before))
    return out


def pjson(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True, default=str)


def make_templates() -> Jinja2Templates:
    """The templates; everything they print is escaped, templates made from strings included."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(
            ["html", "htm", "xml", "svg"], default=True, default_for_string=True
        ),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(dt=dt, money=money, score=score, label=label, pretty=pretty, pjson=pjson)
    env.globals.update(
        version=__version__, dispositions=DISPOSITIONS, statuses=STATUSES, changes=changes
    )
    return Jinja2Templates(env=env)
