"""The benchmark's time split: the input's range, the cut, and the tuning and report periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError

TUNE_ON = ("report-length", "all")
"""Which part of the time before the cut to tune on: the period as long as the report period
just before the cut (the default), or all of it."""


def time_range(source: str | Path, fmt: str | None) -> tuple[datetime, datetime, int]:
    """(first, last, count) of the input's transactions, as the reader sees them."""
    from flows87.pipeline.ingest import read

    result = read(source, fmt)
    row = (
        result.transactions.select(
            pl.col("ts").min().alias("lo"), pl.col("ts").max().alias("hi"), pl.len().alias("n")
        )
        .collect()
        .row(0)
    )
    if row[0] is None:
        raise InputError("the input has no transactions with a time", file=source)
    return row[0], row[1], int(row[2])


def split_time(lo: datetime, hi: datetime, split: float) -> tuple[datetime, datetime, datetime]:
    """(start, cut, end): the interval [start, end) covers every transaction; the cut falls at
    `split` of the way, at midnight when the data spans at least 3 days, else on the hour."""
    if not 0 < split < 1:
        raise InputError(f"split must be between 0 and 1, got {split}")
    lo, hi = lo.astimezone(UTC), hi.astimezone(UTC)
    day = (hi - lo) >= timedelta(days=3)
    unit = timedelta(days=1) if day else timedelta(hours=1)

    def floor(t: datetime) -> datetime:
        t = t.replace(minute=0, second=0, microsecond=0)
        return t.replace(hour=0) if day else t

    start = floor(lo)
    end = floor(hi) + unit
    cut = floor(lo + (hi - lo) * split)
    if cut <= start:
        cut = start + unit
    if cut >= end:
        raise InputError("the input's time range is too short to split", hint=f"{lo} to {hi}")
    return start, cut, end


def check_tune_on(tune_on: str) -> None:
    if tune_on not in TUNE_ON:
        raise InputError(
            f"unknown tuning period {tune_on!r}", field="tune_on", hint=" or ".join(TUNE_ON)
        )


def tune_interval(
    start: datetime, cut: datetime, end: datetime, tune_on: str = "report-length"
) -> tuple[datetime, datetime]:
    """The tuning period [tune_start, cut): as long as the report period [cut, end) and just
    before it (from `start` when the input has less before the cut), or all of [start, cut)."""
    check_tune_on(tune_on)
    if tune_on == "all":
        return start, cut
    return max(start, cut - (end - cut)), cut


def period(lo: datetime, hi: datetime) -> dict[str, Any]:
    """[lo, hi) as the report shows it."""
    return {
        "start": lo.isoformat(),
        "end": hi.isoformat(),
        "days": round((hi - lo) / timedelta(days=1), 4),
    }
