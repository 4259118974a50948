"""What every reader shares: its options and result, and the helpers it reads a source with.

Every reader scans its CSV with every column as text (files.py) and parses the text with the
polars expressions of parsers.py. A cell that does not parse makes its row a *reject*
(rejects.py) instead of an exception, and the rest of the file still reads. Amounts convert to
the base currency with the static rates of reference.py; sources without an accounts table get
one derived from their transactions (derived.py). The readers import all of it from here, as
`common.<name>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from flows87.errors import ConfigError
from flows87.pipeline.ingest.derived import SEP, derive_accounts, first_label
from flows87.pipeline.ingest.parsers import (
    BOOLEANS,
    ISO_FORMATS,
    Check,
    Parsed,
    amount,
    amount_error,
    apply,
    boolean,
    date,
    iso_timestamp,
    key,
    lookup,
    optional_text,
    pick_format,
    raw,
    row_id,
    snake,
    text,
    time_of_day,
    timestamp,
    whole_number,
)
from flows87.pipeline.ingest.reference import (
    country_names,
    currency_names,
    remap,
    to_base,
    units_per_usd,
)
from flows87.pipeline.ingest.rejects import (
    REJECT_SCHEMA,
    clear_staged,
    empty_rejects,
    finish,
    join_rejects,
    record_json,
)

__all__ = [
    "BOOLEANS",
    "ISO_FORMATS",
    "REJECT_SCHEMA",
    "SEP",
    "Check",
    "Options",
    "Parsed",
    "ReadResult",
    "amount",
    "amount_error",
    "apply",
    "boolean",
    "check_options",
    "clear_staged",
    "country_names",
    "currency_names",
    "date",
    "derive_accounts",
    "empty_rejects",
    "finish",
    "first_label",
    "iso_timestamp",
    "join_rejects",
    "key",
    "lookup",
    "optional_text",
    "pick_format",
    "raw",
    "record_json",
    "remap",
    "row_id",
    "snake",
    "text",
    "time_of_day",
    "timestamp",
    "to_base",
    "units_per_usd",
    "whole_number",
]


@dataclass(frozen=True)
class Options:
    """Reader options, validated once in `read`."""

    base_currency: str = "USD"
    max_reject_fraction: float = 0.05
    start: datetime | None = None
    staging: Path | None = None
    """Where a file of more than `stage_above` rows is parsed to (rejects.staged), so that its
    rows are not all held; None holds every file's rows in memory."""
    stage_above: int = 4_000_000


@dataclass
class ReadResult:
    """What a reader returns: canonical lazy tables plus the rows it could not parse."""

    format: str
    sources: list[Path]
    transactions: pl.LazyFrame
    accounts: pl.LazyFrame
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))
    account_sides: pl.LazyFrame | None = None
    """A piece of an input without an accounts table (one of its transaction files, read
    alone): what its accounts are derived from with the other pieces'
    (derived.accounts_from_sides); `accounts` is then empty."""

    def side_tables(self) -> dict[str, pl.DataFrame]:
        """Tables a format has beyond the canonical two (goAML: its party records), published
        in the run directory beside them once the raw gate passes."""
        return {}

    def notes(self) -> list[str]:
        """What the read summary should warn about (e.g. reports not checked against an XSD)."""
        return []


def check_options(opts: Options) -> None:
    """Refuse options that make no sense, before reading anything."""
    if opts.base_currency not in units_per_usd():
        raise ConfigError(
            f"unknown base currency {opts.base_currency!r}",
            hint=f"one of {', '.join(sorted(units_per_usd()))}",
        )
    if not 0.0 <= opts.max_reject_fraction <= 1.0:
        raise ConfigError(f"max_reject_fraction must be in [0, 1], got {opts.max_reject_fraction}")
