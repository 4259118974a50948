"""The quality gate: validate a stage's frame, set failing rows aside, stop the run when needed.

What a failed expectation does is written in the suite, in its `meta.on_fail`:

- `quarantine`: the failing rows leave the frame for RUN/quarantine/<suite>.parquet, with
  `reason` (e.g. "expect_column_values_to_be_between(amount, min 0 exclusive): -5.0"),
  `expectation` and `column`; a row failing several checks appears once, its reasons joined
  with "; ". The rest go on.
- `warn`: counted in the report and in `stats["warnings"]`; the rows stay.
- `fail`: the table itself is wrong (columns, types): the gate stops the run.

The reader's parse rejects (`prior_rejects`: table, source_file, source_row, column, value,
reason and `record`, the whole source row as JSON; one per bad cell) go into the same quarantine
file, one row per rejected source row with `expectation` = "parse", its columns, values and
reasons joined with "; " in the reader's order (a reason names its column and value:
`amount must be > 0 (amount = "0.00")`), and its `record`. So the file holds one row per
rejected source row, in source-row order, whichever way it was rejected:

- a row failing a check: its canonical columns (labels included), `reason`, `expectation`,
  `column`; `table`, `value` and `record` are null, and `source_file` too unless the rows
  came in several files (then the canonical `source_file` names the row's file, and the
  file is in (source_file, source_row) order);
- a parse reject: `table`, `source_file`, `source_row`, `column`, `value`, `reason`,
  `expectation` = "parse" and `record`; the canonical columns are null (they did not parse).

A gate given `prior_rejects` (the raw gates, even with none) always writes these columns.

Counts (`stats`, also in the result JSON's `meta.flows87.stats`): `rows_in` = rows read, parse
rejects included; `rows_checked` = rows validated; `rows_passed`; `rows_quarantined` = parse
rejects + rows failing checks, with the parts `rows_parse_rejected` and `rows_failed_checks`.

The gate also stops when the rejected share, rows_quarantined / rows_in, exceeds
`max_failed_fraction`, or when a quarantine or fail check could not run (GX raised), since then
nobody knows which rows are bad. The result JSON, the report and the quarantine file are written
before the gate raises, so the reason can be read. A re-run that quarantines nothing removes the
quarantine file of an earlier run of the same interval (idempotent runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import polars as pl

from flows87.errors import ConfigError, QualityGateError
from flows87.io import write_json, write_parquet, write_text
from flows87.pipeline.quality.chunks import CHUNK_ROWS, height
from flows87.pipeline.quality.report import render_report
from flows87.pipeline.quality.suites import load_suite, resolve_parameters
from flows87.pipeline.quality.validate import Check, Validated, validate, with_derived
from flows87.rundir import PathLike

PARSE_REJECT_SCHEMA = pl.Schema(
    {
        "table": pl.String(),
        "source_file": pl.String(),
        "source_row": pl.Int64(),
        "column": pl.String(),
        "value": pl.String(),
        "reason": pl.String(),
    }
)
"""The columns a reader's parse rejects carry (and `record`, the source row as JSON, when known)."""
QUARANTINE_COLUMNS = ("reason", "expectation", "column")
"""Added to the input columns of a quarantined row."""
PARSE_COLUMNS = {
    "value": pl.String(),
    "table": pl.String(),
    "source_file": pl.String(),
    "record": pl.String(),
}
"""Added after those by a gate given `prior_rejects` (`source_row` is a canonical column)."""


F = TypeVar("F", bound=pl.DataFrame | pl.LazyFrame)
"""A gate's table in memory, or lazy (a large table: validated in chunks, its passed rows a
query to stream to their file)."""


@dataclass
class GateResult(Generic[F]):
    suite: str
    passed: F
    quarantined: pl.DataFrame
    result_path: Path
    report_path: Path
    quarantine_path: Path | None
    stats: dict[str, Any]


def run_gate(
    frame: F,
    suite: str,
    run_dir: PathLike,
    *,
    params: dict[str, Any] | None = None,
    max_failed_fraction: float = 0.01,
    prior_rejects: pl.DataFrame | None = None,
    suites_dir: str | Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    validated: Validated | None = None,
) -> GateResult[F]:
    """Validate `frame` with expectations/<suite>.json; raise QualityGateError if the run must stop.

    `params` fill the suite's `$PARAMETER`s: `interval_start` / `interval_end` (datetimes; when
    absent, the suite's wide defaults 1990-01-01 .. 2100-01-01 only catch absurd dates) and
    `known_accounts` (account ids; when absent, the referential checks are skipped).
    A frame of more than `chunk_rows` rows is validated in chunks (quality/chunks.py); a lazy
    `frame` (a scan of a large file) is read a chunk at a time and its `passed` stays lazy.
    `validated` replaces the validation (`validate`'s signature): the union of pieces gated a
    task each (quality/pieces.py `merged`).
    """
    if not 0.0 <= max_failed_fraction <= 1.0:
        raise ConfigError(f"max_failed_fraction must be within [0, 1], got {max_failed_fraction}")
    gx_suite = load_suite(suite, suites_dir)
    values, sources = resolve_parameters(gx_suite, params)
    checked, unavailable = with_derived(frame, gx_suite, values)
    spill = Path(str(run_dir)) / "staging" / "gate"
    checks, result_json = (validated or validate)(
        checked, gx_suite, values, unavailable, chunk_rows, spill
    )

    bad_rows = _reasons(checked, checks)
    del checked  # the derived columns were for the checks only
    # nothing to set aside (the usual case) needs no copy of the whole frame
    passed = _without(frame, bad_rows["__row"]) if bad_rows.height else frame
    bad_rows = bad_rows.sort("__row")
    failing = pl.concat(
        [_gather(frame, bad_rows["__row"]), bad_rows.drop("__row")], how="horizontal"
    )
    parse = _parse_rejects(prior_rejects)
    defaults_used = [
        f"{suite}: parameter {name} not given, the suite's default {values[name]} was used"
        for name, source in sources.items()
        if source == "default"
    ]
    stats = _stats(height(frame), failing, parse, checks, max_failed_fraction, defaults_used)
    stop = _stop_reasons(checks, stats, max_failed_fraction)
    stats["passed_gate"] = not stop
    quarantined = _merge(failing, parse) if prior_rejects is not None else failing

    run_dir = Path(run_dir)
    result_path = run_dir / "quality" / f"{suite}.json"
    report_path = run_dir / "quality" / f"{suite}.md"
    quarantine_path = _write_quarantine(quarantined, run_dir / "quarantine" / f"{suite}.parquet")
    shown = _shown_parameters(values, sources)
    result_json["meta"]["flows87"] = {
        "stats": stats,
        "parameters": shown,
        "checks": [
            {"name": c.name, "on_fail": c.on_fail, "status": c.status, "detail": c.detail}
            for c in checks
        ],
    }
    write_json(result_json, result_path)
    report = render_report(suite, checks, stats, shown, result_path, quarantine_path, stop)
    write_text(report, report_path)
    if stop:
        where = f"report: {report_path}" + (
            f"; quarantine: {quarantine_path}" if quarantine_path else ""
        )
        raise QualityGateError(
            f"quality gate {suite!r} stopped the run: " + "; ".join(stop) + f" ({where})",
            suite=suite,
            report=report_path,
            quarantine=quarantine_path,
        )
    return GateResult(suite, passed, quarantined, result_path, report_path, quarantine_path, stats)


def _without(frame: F, rows: pl.Series) -> F:
    """The frame without the rows at these positions (lazily numbered: it streams)."""
    if isinstance(frame, pl.DataFrame):
        kept = frame.filter(~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(rows.implode()))
        return cast(F, kept)
    numbered = frame.with_row_index("__row_nr")
    return cast(F, numbered.filter(~pl.col("__row_nr").is_in(rows.implode())).drop("__row_nr"))


def _gather(frame: pl.DataFrame | pl.LazyFrame, rows: pl.Series) -> pl.DataFrame:
    """The rows at these (sorted) positions."""
    if isinstance(frame, pl.DataFrame):
        return frame[rows]
    at = pl.col("__row_nr").is_in(rows.implode())
    # numbered as it streams: a position filter over the whole frame would hold it
    return frame.with_row_index("__row_nr").filter(at).drop("__row_nr").collect(engine="streaming")


def _reasons(frame: pl.DataFrame | pl.LazyFrame, checks: list[Check]) -> pl.DataFrame:
    """One row per failing row position: __row, reason, expectation, column (joined with "; ").

    The failing rows are gathered by position, not found by scanning the whole frame once per
    check."""
    parts = []
    for check in checks:
        if not check.rows:
            continue
        rows = pl.Series("__row", check.rows, dtype=pl.UInt32).unique().sort()
        parts.append(
            _gather(frame.lazy().select(check.columns), rows)
            .with_columns(rows)
            .select(
                "__row",
                pl.concat_str(pl.lit(check.description + ": "), _value_text(check.columns)).alias(
                    "reason"
                ),
                pl.lit(check.type).alias("expectation"),
                pl.lit(", ".join(check.columns)).alias("column"),
            )
        )
    if not parts:
        return pl.DataFrame(
            schema={"__row": pl.UInt32, **dict.fromkeys(QUARANTINE_COLUMNS, pl.String)}
        )
    return (
        pl.concat(parts)
        .group_by("__row", maintain_order=True)
        .agg(pl.col(c).str.join("; ") for c in QUARANTINE_COLUMNS)
    )


def _value_text(columns: list[str]) -> pl.Expr:
    """The failing value as text ("null" for null); `col=value, ...` for several columns."""

    def text(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.String).fill_null("null")

    if len(columns) == 1:
        return text(columns[0])
    return pl.concat_str([pl.format(f"{c}={{}}", text(c)) for c in columns], separator=", ")


def _parse_rejects(prior: pl.DataFrame | None) -> pl.DataFrame:
    """The reader's rejects, one row per rejected source row (rejects without a row stay one
    each): columns, values and reasons joined with "; ", the row's record."""
    out_schema = pl.Schema(
        {**PARSE_REJECT_SCHEMA, "expectation": pl.String(), "record": pl.String()}
    )
    if prior is None or prior.is_empty():
        return pl.DataFrame(schema=out_schema)
    missing = [c for c in PARSE_REJECT_SCHEMA if c not in prior.columns]
    if missing:
        raise ValueError(
            f"prior_rejects lacks columns {missing}; expected {list(PARSE_REJECT_SCHEMA)}"
        )
    cells = prior.select(
        *(pl.col(c).cast(t) for c, t in PARSE_REJECT_SCHEMA.items()),
        (pl.col("record").cast(pl.String) if "record" in prior.columns else pl.lit(None))
        .cast(pl.String)
        .alias("record"),
    ).with_columns(
        pl.col("value").fill_null(""),
        _cell=pl.int_range(pl.len()),
        # a reason names its column and value, so the joined reasons of a row read on their own
        reason=pl.format(
            '{} ({} = "{}")',
            pl.col("reason").fill_null("rejected"),
            pl.col("column").fill_null("?"),
            pl.col("value").fill_null(""),
        ),
    )
    key = ["table", "source_file", "source_row"]
    rows = (
        cells.filter(pl.col("source_row").is_not_null())
        .group_by(key, maintain_order=True)
        .agg(
            pl.col("column").fill_null("").str.join("; "),
            pl.col("value").str.join("; "),
            pl.col("reason").str.join("; "),
            pl.col("record").drop_nulls().first(),
            pl.col("_cell").first(),
        )
    )
    alone = cells.filter(pl.col("source_row").is_null())
    return (
        pl.concat([rows, alone.select(rows.columns)])
        .sort("_cell")
        .select(*PARSE_REJECT_SCHEMA, expectation=pl.lit("parse"), record=pl.col("record"))
        .cast(out_schema)
    )


def _merge(failing: pl.DataFrame, parse: pl.DataFrame) -> pl.DataFrame:
    """Rows failing checks and parse rejects in one frame: one row per rejected source row, the
    canonical columns, the quarantine columns, then the parse columns; in source-row order when
    the frame has one, in (file, row) order when its rows came from several files (their
    `source_file`, the column a parse reject names its file in)."""
    if "source_file" in failing.columns:  # the canonical lineage is categorical: as text here
        failing = failing.with_columns(pl.col("source_file").cast(pl.String))
    columns = [*failing.columns, *(c for c in PARSE_COLUMNS if c not in failing.columns)]
    if "source_row" not in columns:
        columns.insert(columns.index("reason"), "source_row")
    schema = {**dict(failing.schema), **PARSE_COLUMNS}
    schema.setdefault("source_row", pl.Int64())
    empty = pl.DataFrame(schema={c: schema[c] for c in columns})
    parts = [empty, *(f for f in (failing, parse) if not f.is_empty())]
    merged = pl.concat(parts, how="diagonal_relaxed").select(columns)
    if "source_file" in failing.columns:  # rows of several files, each numbered from 1
        return merged.sort("source_file", "source_row", nulls_last=True, maintain_order=True)
    if parse.is_empty():
        return merged
    return merged.sort("source_row", nulls_last=True, maintain_order=True)


def _stats(
    rows: int,
    failing: pl.DataFrame,
    parse: pl.DataFrame,
    checks: list[Check],
    max_failed_fraction: float,
    warnings: list[str],
) -> dict[str, Any]:
    parse_rows = parse.height  # one row per rejected source row
    total = rows + parse_rows
    quarantined = failing.height + parse_rows
    warnings = list(warnings)
    for c in checks:
        if c.status == "skipped":
            warnings.append(f"{c.name} {c.detail}")
        elif c.on_fail == "warn" and c.status == "failed":
            warnings.append(f"{c.name}: {_count_text(c, rows)} (rows kept)")
        elif c.on_fail == "warn" and c.status == "error":
            warnings.append(f"{c.name} could not run: {c.detail}")
    return {
        "rows_in": total,
        "rows_checked": rows,
        "rows_passed": rows - failing.height,
        "rows_quarantined": quarantined,
        "rows_parse_rejected": parse_rows,
        "rows_failed_checks": failing.height,
        "failed_fraction": quarantined / total if total else 0.0,
        "max_failed_fraction": max_failed_fraction,
        "expectations_failed": [c.name for c in checks if c.status in ("failed", "error")],
        "warnings": warnings,
    }


def _count_text(check: Check, rows_in: int) -> str:
    if check.unexpected_count is None:
        return check.detail or check.status
    share = check.unexpected_count / rows_in if rows_in else 0.0
    return f"rows: {check.unexpected_count} ({share:.2%})"


def _stop_reasons(
    checks: list[Check], stats: dict[str, Any], max_failed_fraction: float
) -> list[str]:
    reasons = [
        f"{c.name} failed ({c.detail or c.status})"
        for c in checks
        if c.on_fail == "fail" and c.status in ("failed", "error")
    ]
    reasons += [
        f"{c.name} could not run ({c.detail})"
        for c in checks
        if c.on_fail == "quarantine" and c.status == "error"
    ]
    if stats["failed_fraction"] > max_failed_fraction:
        culprits = [f"{c.name}: {len(c.rows)}" for c in checks if c.rows]
        if stats["rows_parse_rejected"]:
            culprits.append(f"parse rejects: {stats['rows_parse_rejected']}")
        reasons.append(
            f"{stats['rows_quarantined']} of {stats['rows_in']} rows rejected "
            f"({stats['failed_fraction']:.2%} > allowed {max_failed_fraction:.2%}; "
            + ", ".join(culprits)
            + ")"
        )
    return reasons


def _write_quarantine(quarantined: pl.DataFrame, path: Path) -> Path | None:
    if quarantined.is_empty():
        path.unlink(missing_ok=True)  # a stale file from an earlier run of this interval
        return None
    return write_parquet(quarantined, path)


def _shown_parameters(values: dict[str, Any], sources: dict[str, str]) -> dict[str, str]:
    """Parameter values as the report shows them (lists by their length)."""
    shown = {}
    for name, value in values.items():
        text = f"{len(value)} values" if isinstance(value, list) else str(value)
        shown[name] = (
            f"{text} ({sources[name]})" if value is not None else "not given (checks skipped)"
        )
    return shown
