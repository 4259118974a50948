"""Shared parsing helpers of the readers: text parsers, rejects, FX rates, derived accounts.

Every reader scans its CSV with every column as text (files.py) and parses the text with these
polars expressions. A cell that does not parse makes its row a *reject* (file, row, column, raw
value, reason, and the whole source row as `record`) instead of an exception, and the rest of
the file still reads.

A parser returns the parsed column and a `Check`: an expression giving the reason a row cannot
be used, evaluated after the parsed columns exist, so the parse is not done twice.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from flows87 import schema
from flows87.errors import ConfigError, InputError
from flows87.pipeline.ingest.files import RAW, collect

REJECT_SCHEMA = pl.Schema(
    {
        "table": pl.String(),
        "source_file": pl.String(),
        "source_row": pl.Int64(),
        "column": pl.String(),
        "value": pl.String(),
        "reason": pl.String(),
        "record": pl.String(),
    }
)
"""One reject per bad cell. `record` is the whole source row as a JSON object, the same for every
reject of a row: every field of the source (labels too) under its header name, as the file's
text (`{"step": "1", "amount": "0.00", ..., "isFraud": "1"}`), so that nothing read is lost. In
a CSV an empty field is `""`; a Parquet value is its text as polars writes it, a null is null."""

BOOLEANS = {
    "1": True, "true": True, "t": True, "yes": True, "y": True, "1.0": True,
    "0": False, "false": False, "f": False, "no": False, "n": False, "0.0": False,
}  # fmt: skip
"""Spellings of booleans seen in exported files (Excel writes TRUE, pandas True, others 1)."""


@dataclass(frozen=True)
class Options:
    """Reader options, validated once in `read`."""

    base_currency: str = "USD"
    max_reject_fraction: float = 0.05
    start: datetime | None = None


@dataclass
class ReadResult:
    """What a reader returns: canonical lazy tables plus the rows it could not parse."""

    format: str
    sources: list[Path]
    transactions: pl.LazyFrame
    accounts: pl.LazyFrame
    rejects: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=REJECT_SCHEMA))


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


# ---------------------------------------------------------------- reference data


@functools.cache
def _reference(name: str) -> dict[str, Any]:
    text = resources.files("flows87.pipeline.ingest").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def units_per_usd() -> dict[str, float]:
    """ISO 4217 code -> units of that currency per US dollar (currencies.yaml)."""
    return {k: float(v) for k, v in _reference("currencies.yaml")["units_per_usd"].items()}


def currency_names() -> dict[str, str]:
    """Lower-case currency spelling (names and ISO codes) -> ISO 4217 code."""
    names = {code.lower(): code for code in units_per_usd()}
    names.update({k.lower(): v for k, v in _reference("currencies.yaml")["names"].items()})
    return names


def country_names() -> dict[str, str]:
    """Lower-case country spelling (names and alpha-2 codes) -> ISO 3166 alpha-2 code."""
    names = {k.lower(): v for k, v in _reference("countries.yaml")["names"].items()}
    names.update({code.lower(): code for code in set(names.values())})
    return names


def check_options(opts: Options) -> None:
    """Refuse options that make no sense, before reading anything."""
    if opts.base_currency not in units_per_usd():
        raise ConfigError(
            f"unknown base currency {opts.base_currency!r}",
            hint=f"one of {', '.join(sorted(units_per_usd()))}",
        )
    if not 0.0 <= opts.max_reject_fraction <= 1.0:
        raise ConfigError(f"max_reject_fraction must be in [0, 1], got {opts.max_reject_fraction}")


def to_base(amount: pl.Expr, currency: pl.Expr, base: str) -> pl.Expr:
    """`amount` in `currency` converted to `base` with the static rates; null if no rate."""
    rates = units_per_usd()
    return amount / remap(currency, rates, pl.Float64()) * rates[base]


def remap(expr: pl.Expr, mapping: dict[str, Any], dtype: pl.DataType) -> pl.Expr:
    """`mapping[value]` for each value of a text expression, null for values not in `mapping`.

    Done as an Enum cast and a gather because polars 2.1's streaming engine runs
    `replace_strict` on whole columns: on a 450 MB file that tripled the memory of a read.
    """
    index = expr.cast(pl.Enum(list(mapping)), strict=False).to_physical()
    return pl.lit(pl.Series(list(mapping.values()), dtype=dtype)).gather(index)


# ---------------------------------------------------------------- parsers


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


# ---------------------------------------------------------------- rejects


def finish(
    lf: pl.LazyFrame,
    checks: list[Check],
    *,
    table: str,
    path: Path,
    n_rows: int,
    opts: Options,
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Split parsed rows into good rows and rejects.

    The file is read and parsed once: the parsed columns with each check's error (null when the
    value is fine) are collected, then split in memory (a second query for the good rows would
    read and parse the whole file again: 3.5 s of 7 for 5M canonical transactions). The raw
    columns stay (a reader may still read one, e.g. a label's text; where a parsed column is
    the raw one renamed, both share their memory), and a failing value is kept as text only
    where its check failed. Each reject keeps its whole source row as `record` (every `raw:`
    column, built for the rejected rows only). Past `max_reject_fraction` an InputError names
    the first bad row.
    """
    errors = [f"__error_{i}" for i in range(len(checks))]
    shown = [f"__value_{i}" for i in range(len(checks))]
    lf = lf.with_columns([c.error.alias(e) for c, e in zip(checks, errors, strict=True)])
    values = [
        pl.when(pl.col(e).is_not_null())
        .then((c.value if c.value is not None else raw(c.column)).cast(pl.String))
        .alias(v)
        for c, e, v in zip(checks, errors, shown, strict=True)
    ]
    frame = collect(lf.with_columns(values), path)
    flagged = (
        pl.any_horizontal([pl.col(e).is_not_null() for e in errors]) if errors else pl.lit(False)
    )
    cap = int(opts.max_reject_fraction * n_rows + 1e-9)  # 0.29 * 100 is 28.999...96
    bad = frame.filter(flagged)
    n_bad = bad.height
    kept = bad.head(cap + 1)  # past the cap only the first is named
    kept = kept.select(pl.col("source_row"), *shown, *errors, record_json(kept, path))
    rejects = _rejects(kept, checks, table, path)
    if n_bad > cap:
        first = rejects.row(0, named=True)
        raise InputError(
            f"{n_bad:,} of {n_rows:,} rows could not be read ({n_bad / n_rows:.1%}, more than the "
            f"{opts.max_reject_fraction:.1%} allowed); the first: {first['reason']}"
            + (f" (value {first['value']!r})" if first["value"] else ""),
            file=path,
            row=first["source_row"],
            column=first["column"],
            hint="fix those rows, or raise max_reject_fraction to keep the good rows and list "
            "the bad ones as rejects",
        )
    good = frame.filter(~flagged) if n_bad else frame
    return good.drop(*errors, *shown).lazy(), rejects


def _rejects(bad: pl.DataFrame, checks: list[Check], table: str, path: Path) -> pl.DataFrame:
    """One reject per bad cell, in row order."""
    parts = [
        bad.filter(pl.col(f"__error_{i}").is_not_null()).select(
            table=pl.lit(table),
            source_file=pl.lit(str(path)),
            source_row=pl.col("source_row").cast(pl.Int64),
            column=pl.lit(c.column),
            value=pl.col(f"__value_{i}").fill_null(""),
            reason=pl.col(f"__error_{i}"),
            record=pl.col("__record"),
            _order=pl.lit(i),
        )
        for i, c in enumerate(checks)
    ]
    if not parts:
        return empty_rejects()
    return pl.concat(parts).sort("source_row", "_order").drop("_order").cast(REJECT_SCHEMA)


def record_json(frame: pl.DataFrame, path: Path) -> pl.Expr:
    """`__record`: each row's source fields (its `raw:` columns) as one JSON object, keyed by
    the source's header names, values as text (nested Parquet values as JSON)."""
    names = [c for c in frame.columns if c.startswith(RAW)]
    if not names:
        return pl.lit(None, dtype=pl.String).alias("__record")
    csv = path.suffix.lower() != ".parquet"  # a CSV field is text: empty is "", not missing
    fields = []
    for name in names:
        value = pl.col(name)
        if not frame.schema[name].is_nested():
            value = value.cast(pl.String)
            if csv:
                value = value.fill_null("")
        fields.append(value.alias(name.removeprefix(RAW)))
    return pl.struct(fields).struct.json_encode().alias("__record")


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def join_rejects(*frames: pl.DataFrame) -> pl.DataFrame:
    """The rejects of several files as one frame of REJECT_SCHEMA (a frame without `record`,
    built by hand, gets a null record)."""
    parts = [empty_rejects(), *(f for f in frames if not f.is_empty())]
    return pl.concat(parts, how="diagonal_relaxed").select(
        pl.col(c).cast(t) for c, t in REJECT_SCHEMA.items()
    )


# ---------------------------------------------------------------- accounts


def derive_accounts(tx: pl.LazyFrame, *, kind: pl.Expr | None = None) -> pl.LazyFrame:
    """Accounts seen in the transactions, for sources without an accounts table.

    Optional helper columns `_src_bank`/`_dst_bank` give the bank, `src_country`/`dst_country`
    the country. With labels, an account is suspicious when it sent or received a suspicious
    transaction; its typology and scheme are those of the earliest such transaction.
    """
    names = tx.collect_schema().names()

    def col(name: str) -> pl.Expr:
        return pl.col(name) if name in names else pl.lit(None, dtype=pl.String)

    sides = pl.concat(  # both ends of every transaction
        tx.select(
            account_id=pl.col(f"{end}_account"),
            bank_id=col(f"_{end}_bank"),
            country=col(f"{end}_country"),
            label=first_label(names),
        )
        for end in ("src", "dst")
    )
    accounts = sides.group_by("account_id").agg(
        pl.col("bank_id").drop_nulls().min(),
        pl.col("country").drop_nulls().min(),
        pl.col("label").min(),  # the earliest suspicious transaction's
    )
    if "is_suspicious" in names:
        parts = pl.col("label").str.split(SEP)
        accounts = accounts.with_columns(
            is_suspicious=pl.col("label").is_not_null(),
            typology=parts.list.get(1, null_on_oob=True).replace("", None),
            scheme_id=parts.list.get(2, null_on_oob=True).replace("", None),
        )
    accounts = accounts.with_columns(
        party_id=pl.lit(None, dtype=pl.String),
        kind=kind if kind is not None else pl.lit("unknown"),
        opened_at=pl.lit(None, dtype=schema.UTC_TS),
    )
    return schema.conform(accounts.sort("account_id"), "accounts")


SEP = "\x1f"


def first_label(names: list[str]) -> pl.Expr:
    """`<ts>SEP<typology>SEP<scheme_id>` of a suspicious transaction, null otherwise: the minimum
    per account is its earliest one, found by a plain streaming aggregate."""
    if "is_suspicious" not in names:
        return pl.lit(None, dtype=pl.String)
    parts = [pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")]
    parts += [
        pl.col(c).fill_null("") if c in names else pl.lit("") for c in ("typology", "scheme_id")
    ]
    return pl.when(pl.col("is_suspicious")).then(pl.concat_str(parts, separator=SEP))
