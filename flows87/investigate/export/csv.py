"""A case's transactions as CSV, safe to open in a spreadsheet.

Every text column comes from outside (names, memos, ids, even currencies and countries), so in
every one: a cell that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or
a carriage return) gets a leading apostrophe, and control characters other than tab and line
breaks are removed (a NUL or an escape sequence has no business in a report and upsets the
tools that read it)."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
from sqlalchemy.orm import Session

from flows87.investigate.store.queries import _TXN_FIELDS, case_detail

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def _safe(col: str) -> pl.Expr:
    c = pl.col(col).str.replace_all(_CONTROL, "")
    return (
        pl.when(c.str.slice(0, 1).is_in(list(_FORMULA)))
        .then(pl.lit("'") + c)
        .otherwise(c)
        .alias(col)
    )


def safe_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every string column of `frame` escaped for spreadsheets (see the module's docstring)."""
    return frame.with_columns(
        _safe(name) for name, dtype in frame.schema.items() if dtype == pl.String
    )


def transactions_frame(session: Session, case_id: str) -> pl.DataFrame:
    rows = case_detail(session, case_id, audit_limit=1)["transactions"]
    schema: dict[str, pl.DataType] = {c: pl.String() for c in _TXN_FIELDS}
    schema.update(ts=pl.Datetime("us", "UTC"), amount=pl.Float64(), amount_base=pl.Float64())
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.lit(case_id).alias("case_id")).select("case_id", *_TXN_FIELDS)


def transactions_csv(session: Session, case_id: str) -> str:
    frame = safe_text(transactions_frame(session, case_id))
    buf = io.StringIO()
    frame.write_csv(buf, datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ")
    return buf.getvalue()


def write_transactions_csv(session: Session, case_id: str, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(transactions_csv(session, case_id), encoding="utf-8")
    return out
