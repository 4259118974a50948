"""The learned scorer's part of a run as the case store keeps it (issue 16).

After a run with a model, cases.parquet carries `today_score` (the risk before the blend),
`learned_score` and `learned_reasons` (a list of sentences), and RUN/learning/model/
model.meta.json says which model that was and what it was trained on. A run without a model
has none of these (or only nulls): its cases are then shaped exactly as before, so their
fingerprints, and the cases an earlier load stored, do not change.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError

LEARNED_CASE_COLUMNS = ("today_score", "learned_score", "learned_reasons", "model_version")
MODEL_META = Path("learning") / "model" / "model.meta.json"
META_FIELDS = ("version", "method", "positives", "negatives", "labelled", "cutoff")


def read_model_meta(run_path: Path) -> dict[str, Any] | None:
    """The run's model.meta.json without its column list, or None when the run used no model."""
    path = run_path / MODEL_META
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the model's description: {exc}", file=path) from None
    if not isinstance(meta, dict) or not meta.get("version"):
        raise InputError("the model's description has no version", file=path)
    meta.pop("columns", None)  # hundreds of feature names: the model file has them
    return meta


def _json_text(col: str) -> pl.Expr:
    """A list[str] column as JSON text, as rows.json_list writes it (rows imports this module)."""
    return (
        pl.struct(pl.col(col).fill_null([]).alias("v"))
        .struct.json_encode()
        .str.slice(5)
        .str.strip_suffix("}")
    )


def learned_cases(cases: pl.DataFrame, meta: dict[str, Any] | None) -> pl.DataFrame:
    """`cases` with the learned columns as the store keeps them (reasons as JSON text, the
    model's version on each case it scored) when some case has a learned score; otherwise
    `cases` without them."""
    if "learned_score" not in cases.columns or cases["learned_score"].null_count() == len(cases):
        return cases.drop(LEARNED_CASE_COLUMNS, strict=False)
    if "today_score" not in cases.columns:
        cases = cases.with_columns(pl.lit(None, dtype=pl.Float64).alias("today_score"))
    if "learned_reasons" not in cases.columns:
        cases = cases.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("learned_reasons"))
    scored = pl.col("learned_score").is_not_null()
    version = str(meta["version"]) if meta else None
    return cases.with_columns(
        pl.col("learned_score").cast(pl.Float64),
        pl.col("today_score").cast(pl.Float64),
        pl.when(scored).then(_json_text("learned_reasons")).alias("learned_reasons"),
        pl.when(scored).then(pl.lit(version, dtype=pl.String)).alias("model_version"),
    )


def model_row(meta: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The learned_models row of a model.meta.json."""

    def number(key: str) -> int | None:
        value = meta.get(key)
        return int(value) if isinstance(value, int | float) else None

    labelled = number("labelled")
    if labelled is None and number("positives") is not None and number("negatives") is not None:
        labelled = (number("positives") or 0) + (number("negatives") or 0)
    return {
        "version": str(meta["version"])[:64],
        "method": str(meta["method"])[:16] if meta.get("method") else None,
        "positives": number("positives"),
        "negatives": number("negatives"),
        "labelled": labelled,
        "cutoff": str(meta["cutoff"])[:64] if meta.get("cutoff") else None,
        "meta": json.dumps(meta, sort_keys=True, default=str),
        "loaded_at": now,
    }
