"""A case's transactions as CSV (cells that a spreadsheet would run as a formula are quoted
with a leading apostrophe: names and memos come from outside)."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
from sqlalchemy.orm import Session

from flows87.investigate.store.queries import _TXN_FIELDS, case_detail

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = ("txn_id", "src_account", "dst_account", "memo", "location_id", "device_id", "mcc")


def _safe(col: str) -> pl.Expr:
    c = pl.col(col)
    return (
        pl.when(c.str.slice(0, 1).is_in(list(_FORMULA)))
        .then(pl.lit("'") + c)
        .otherwise(c)
        .alias(col)
    )


def transactions_frame(session: Session, case_id: str) -> pl.DataFrame:
    rows = case_detail(session, case_id, audit_limit=1)["transactions"]
    schema: dict[str, pl.DataType] = {c: pl.String() for c in _TXN_FIELDS}
    schema.update(ts=pl.Datetime("us", "UTC"), amount=pl.Float64(), amount_base=pl.Float64())
    frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
    return frame.with_columns(pl.lit(case_id).alias("case_id")).select("case_id", *_TXN_FIELDS)


def transactions_csv(session: Session, case_id: str) -> str:
    frame = transactions_frame(session, case_id).with_columns(_safe(c) for c in TEXT_COLUMNS)
    buf = io.StringIO()
    frame.write_csv(buf, datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ")
    return buf.getvalue()


def write_transactions_csv(session: Session, case_id: str, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(transactions_csv(session, case_id), encoding="utf-8")
    return out
