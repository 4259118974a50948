"""The readers' text parsers: polars expressions from a source column's text to our types.

A parser returns the parsed column and a `Check`: an expression giving the reason a row cannot
be used, evaluated after the parsed columns exist, so the parse is not done twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flows87.pipeline.ingest.files import RAW, collect
from flows87.pipeline.ingest.reference import remap

BOOLEANS = {
    "1": True, "true": True, "t": True, "yes": True, "y": True, "1.0": True,
    "0": False, "false": False, "f": False, "no": False, "n": False, "0.0": False,
}  # fmt: skip
"""Spellings of booleans seen in exported files (Excel writes TRUE, pandas True, others 1)."""


@dataclass(frozen=True)
class Check:
    """Why a row's `column` cannot be used: `error` is the reason, null when the value is fine."""

    column: str
    error: pl.Expr
    value: pl.Expr | None = None  # the text shown in the reject; the raw column by default


@dataclass(frozen=True)
class Parsed:
    """A parsed output column and the check that rejects its row when parsing failed."""

    expr: pl.Expr
    check: Check | None = None


def raw(name: str) -> pl.Expr:
    """The raw text of a source column."""
    return pl.col(RAW + name)


def text(name: str) -> pl.Expr:
    """The stripped text of a source column, null when blank."""
    v = raw(name).str.strip_chars()
    return pl.when(v != "").then(v)


def _when(*pairs: tuple[pl.Expr, str]) -> pl.Expr:
    """The reason of the first condition that holds, else null."""
    chain: Any = pl
    for condition, reason in pairs:
        chain = chain.when(condition).then(pl.lit(reason))
    expr: pl.Expr = chain.otherwise(pl.lit(None, dtype=pl.String))
    return expr


def key(name: str, out: str) -> Parsed:
    """An identifier that must not be empty."""
    return Parsed(text(name).alias(out), Check(name, _when((pl.col(out).is_null(), "empty value"))))


def optional_text(name: str, out: str) -> Parsed:
    return Parsed(text(name).alias(out))


def amount(name: str, out: str) -> Parsed:
    """A positive finite amount; scientific notation (1.33E+07) is fine."""
    value = text(name).cast(pl.Float64, strict=False).alias(out)
    return Parsed(value, Check(name, amount_error(pl.col(out), text(name).is_null())))


def amount_error(value: pl.Expr, empty: pl.Expr) -> pl.Expr:
    """Why a parsed amount cannot be used (null when it can)."""
    return _when(
        (empty, "empty value"),
        (value.is_null(), "not a number"),
        (value.is_nan(), "not a number (NaN)"),
        (value.is_infinite(), "amount must be finite"),
        (value <= 0, "amount must be > 0"),
    )


def whole_number(name: str, out: str) -> Parsed:
    """A whole number >= 0 (`3` or `3.0`)."""
    number = text(name).cast(pl.Float64, strict=False)
    finite = number.is_finite() & (number == number.floor()) & (number.abs() < 2**53)
    value = pl.when(finite).then(number).cast(pl.Int64)
    return Parsed(
        value.alias(out),
        Check(
            name,
            _when(
                (text(name).is_null(), "empty value"),
                (pl.col(out).is_null(), "not a whole number"),
                (pl.col(out) < 0, "must be >= 0"),
            ),
        ),
    )


def timestamp(name: str, out: str, fmt: str) -> Parsed:
    """A UTC datetime in format `fmt` (naive text is taken as UTC)."""
    return Parsed(
        text(name).str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False).alias(out),
        Check(
            name,
            _when(
                (raw(name).is_null(), "empty value"),
                (pl.col(out).is_null(), f"not a date in format {fmt}"),
            ),
        ),
    )


def pick_format(lf: pl.LazyFrame, name: str, formats: tuple[str, ...], path: Path) -> str:
    """The format that parses most of the first 1,000 values (a file keeps to one format;
    trying several on every row would cost a parse each)."""
    value = text(name)
    parsed = [
        value.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False)
        .is_not_null()
        .sum()
        .alias(str(i))
        for i, f in enumerate(formats)
    ]
    counts = collect(lf.head(1000).select(parsed), path).row(0)
    return formats[max(range(len(formats)), key=lambda i: (counts[i], -i))]


ISO_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def iso_timestamp(name: str, out: str, *, required: bool = True) -> Parsed:
    """An ISO 8601 date-time: `T` or blank between date and time, `Z`/offset or none (= UTC)."""
    value = (
        text(name)
        .str.replace(r"(?i)(Z| ?UTC)$", "+00:00")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})T", "${1} ")
    )
    parsed = [
        value.str.to_datetime(f, time_unit="us", time_zone="UTC", strict=False) for f in ISO_FORMATS
    ]
    pairs = [(text(name).is_null(), "empty value")] if required else []
    pairs.append(
        (
            text(name).is_not_null() & pl.col(out).is_null(),
            "not an ISO 8601 date-time (2022-09-01T00:20:00Z)",
        )
    )
    return Parsed(pl.coalesce(parsed).alias(out), Check(name, _when(*pairs)))


def date(name: str, out: str, *, required: bool = True) -> Parsed:
    """A calendar date `YYYY-MM-DD` (a trailing time is ignored)."""
    value = text(name).str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    pairs = [(text(name).is_null(), "empty value")] if required else []
    pairs.append(
        (text(name).is_not_null() & pl.col(out).is_null(), "not a date in format %Y-%m-%d")
    )
    return Parsed(value.alias(out), Check(name, _when(*pairs)))


def time_of_day(name: str, out: str) -> Parsed:
    """A time of day `HH:MM:SS`."""
    value = text(name).str.to_time("%H:%M:%S", strict=False)
    return Parsed(
        value.alias(out),
        Check(
            name,
            _when(
                (text(name).is_null(), "empty value"),
                (pl.col(out).is_null(), "not a time in format %H:%M:%S"),
            ),
        ),
    )


def boolean(name: str, out: str, *, required: bool = True) -> Parsed:
    """0/1, true/false in any case, yes/no: what spreadsheets and pandas write."""
    value = remap(text(name).str.to_lowercase(), BOOLEANS, pl.Boolean())
    pairs = [(text(name).is_null(), "empty value")] if required else []
    pairs.append(
        (
            text(name).is_not_null() & pl.col(out).is_null(),
            "not a boolean (expected 0/1 or true/false)",
        )
    )
    return Parsed(value.alias(out), Check(name, _when(*pairs)))


def lookup(
    name: str,
    out: str,
    mapping: dict[str, str],
    what: str,
    *,
    default: str | None = None,
    required: bool = True,
    strict: bool = True,
) -> Parsed:
    """Map a vocabulary (compared without case) onto ours.

    An unknown value becomes `default`; without a default it rejects the row, unless not
    `strict` (then it is null: for optional columns that should not cost a transaction).
    """
    words = {k.lower(): v for k, v in mapping.items()}
    value = remap(text(name).str.to_lowercase(), words, pl.String())
    if default is not None:
        value = pl.when(text(name).is_not_null()).then(value.fill_null(default))
    pairs = [(text(name).is_null(), "empty value")] if required else []
    if default is None and strict:
        pairs.append((text(name).is_not_null() & pl.col(out).is_null(), f"unknown {what}"))
    return Parsed(value.alias(out), Check(name, _when(*pairs)) if pairs else None)


def snake(expr: pl.Expr) -> pl.Expr:
    """`FAN-OUT`, `Stacked Bipartite`, `Fan_In` -> `fan_out`, `stacked_bipartite`, `fan_in`."""
    return (
        expr.str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(r"[^a-z0-9]+", "_")
        .str.strip_chars("_")
    )


def row_id(path: Path) -> pl.Expr:
    """A stable transaction id for sources without one: `<file stem>:<source row>`."""
    return pl.concat_str(pl.lit(path.stem + ":"), pl.col("source_row").cast(pl.String))


def apply(lf: pl.LazyFrame, parsed: list[Parsed]) -> tuple[pl.LazyFrame, list[Check]]:
    """Add the parsed columns; return them with their checks."""
    checks = [p.check for p in parsed if p.check is not None]
    return lf.with_columns([p.expr for p in parsed]), checks
