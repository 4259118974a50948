"""Durations written as in polars and Sigma rules: "90m", "6h", "7d", "2w"."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str | int | float) -> timedelta:
    """Parse "7d" / "6h" / "90m"; a bare number is read as days.

    >>> parse_duration("36h")
    datetime.timedelta(days=1, seconds=43200)
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return timedelta(days=float(text))
    m = _PATTERN.match(str(text))
    if not m:
        raise ValueError(f"{text!r} is not a duration like 90m, 6h, 7d or 2w")
    value, unit = int(m.group(1)), m.group(2)
    if value <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return timedelta(**{_UNITS[unit]: value})


def format_duration(delta: timedelta) -> str:
    """The shortest exact text for a duration: 7 days -> "7d"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
