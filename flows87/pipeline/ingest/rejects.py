"""Rows the readers could not parse: one reject per bad cell, with its whole source row.

A cell that does not parse makes its row a reject (file, row, column, raw value, reason, and
the source row as `record`) instead of an exception, and the rest of the file still reads,
up to `max_reject_fraction`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from flows87.errors import InputError
from flows87.pipeline.ingest.files import FILE_ERRORS, RAW, collect, file_error
from flows87.pipeline.ingest.parsers import Check, raw

if TYPE_CHECKING:  # common.py holds Options and imports this module
    from flows87.pipeline.ingest.common import Options


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
    read and parse the whole file again: 3.5 s of 7 for 5M canonical transactions). A file of
    more than `opts.stage_above` rows with `opts.staging` set is instead streamed, parsed, to
    STAGING/parsed-*.parquet (`staged`): only its rejects are collected and its good rows are a
    scan of that file, so memory does not grow with the input. The raw
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
    flagged = (
        pl.any_horizontal([pl.col(e).is_not_null() for e in errors]) if errors else pl.lit(False)
    )
    cap = int(opts.max_reject_fraction * n_rows + 1e-9)  # 0.29 * 100 is 28.999...96
    frame: pl.DataFrame | pl.LazyFrame
    if opts.staging is not None and n_rows > opts.stage_above:
        frame = staged(lf.with_columns(values), opts.staging, table, path)
        kept = collect(frame.filter(flagged).head(cap + 1), path)  # past the cap only the first
        n_bad = kept.height
        if n_bad > cap:  # is named; the count is read again (the error columns only)
            n_bad = int(collect(frame.filter(flagged).select(pl.len()), path).item())
    else:
        frame = collect(lf.with_columns(values), path)
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


PARSED = "parsed-"
"""The name every staged parsed file starts with (`clear_staged` removes them)."""


def staged(lf: pl.LazyFrame, staging: Path, table: str, path: Path) -> pl.LazyFrame:
    """`lf` streamed to STAGING/parsed-TABLE-<hash of path>.parquet, and a scan of it."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    out = staging / f"{PARSED}{table}-{digest}.parquet"
    staging.mkdir(parents=True, exist_ok=True)
    try:
        lf.sink_parquet(out, engine="streaming")
    except FILE_ERRORS as e:
        out.unlink(missing_ok=True)
        raise file_error(e, path) from None
    return pl.scan_parquet(out)


def staged_files(staging: Path) -> list[Path]:
    """The parsed files `staged` wrote to `staging`."""
    return sorted(staging.glob(f"{PARSED}*.parquet"))


def clear_staged(staging: Path) -> None:
    """Remove the parsed files `staged` wrote, once nothing reads them any more."""
    for p in staged_files(staging):
        p.unlink()


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
