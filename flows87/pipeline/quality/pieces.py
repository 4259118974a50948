"""A suite run a piece of a table at a time (a task per input file), then merged into the result
the suite gives on the union of the pieces.

Each piece's task runs the suite's expectations whose results merge (quality/chunks.py: the
row-by-row ones, the column set and types, a constant row count, uniqueness) on its rows and
keeps GX's results with their per-row lists (`gate_piece`). A uniqueness expectation sees the
repeats within its piece there; the piece also writes a hash of each row's key, so the merge
finds the keys that occur in more than one piece from the hashes alone, gathers every row of
those keys (a handful: a file delivered twice, a corrected re-send) and runs the expectation
on them through GX. The merge (`merged`) then joins the pieces' results as chunks of one table
(row positions offset by the rows before the piece) and runs the rest (an expectation with
`mostly`, a row count with a parameter) on the union, so the gate writes what it writes when
it validates the union in one task (tested), while the GX work on the rows is done where the
rows were read.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import QualityGateError
from flows87.io import atomic_path, write_parquet
from flows87.pipeline.quality import chunks
from flows87.pipeline.quality.suites import load_suite, resolve_parameters
from flows87.pipeline.quality.validate import (
    _RESULT_FORMAT,
    Check,
    Frame,
    Validated,
    _needed_columns,
    finish,
    names,
    plan,
    run,
    run_on_pandas,
    with_derived,
)

HASH_SEED = 29
KEY_ROWS = 20_000_000
"""Key hashes per pass when finding the keys of several pieces (8 bytes each)."""


def results_path(folder: Path, suite: str) -> Path:
    return folder / f"gate-{suite}.pkl"


def keys_path(folder: Path, suite: str) -> Path:
    return folder / f"gate-{suite}-keys.parquet"


def gate_piece(
    frame: Frame,
    suite: str,
    folder: Path,
    *,
    params: dict[str, Any] | None = None,
    suites_dir: str | Path | None = None,
    chunk_rows: int = chunks.CHUNK_ROWS,
) -> dict[str, Any]:
    """Run the suite's mergeable expectations on one piece; keep GX's results and the key
    hashes in `folder`. Returns the piece's rows and its failing rows per expectation."""
    gx_suite = load_suite(suite, suites_dir)
    values, _ = resolve_parameters(gx_suite, params)
    checked, unavailable = with_derived(frame, gx_suite, values)
    _, to_run = plan(names(checked), gx_suite, values, unavailable)
    mine = [e for e in to_run if chunks.hash_key([e]) is not False]
    results, meta = run(checked, gx_suite, mine, values, chunk_rows, folder / "gate")
    n = chunks.height(checked)
    keys = {e["id"]: _key_hash(e) for e in mine if chunks.hash_key([e])}
    folder.mkdir(parents=True, exist_ok=True)
    keys_path(folder, suite).unlink(missing_ok=True)
    if keys:
        write_parquet(checked.lazy().select(**keys), keys_path(folder, suite))
    saved = {"rows": n, "columns": names(checked), "results": results, "meta": meta}
    with atomic_path(results_path(folder, suite)) as tmp:
        tmp.write_bytes(pickle.dumps(saved, protocol=5))
    return {
        "rows": n,
        "failing": {
            f"{r.expectation_config.type}#{r.expectation_config.id}": int(
                (r.result or {}).get("unexpected_count") or 0
            )
            for r in results
            if not r.success
        },
    }


def _key_hash(exp: dict[str, Any]) -> pl.Expr:
    """A hash of the uniqueness key; null where GX ignores the row (its key all null)."""
    key = chunks.hash_key([exp])
    assert key
    every_null = pl.all_horizontal(pl.col(c).is_null() for c in key)
    return pl.when(every_null).then(None).otherwise(pl.struct(key).hash(HASH_SEED))


def merged(folders: list[Path], suite_name: str) -> Validated:
    """The `validate` of quality/gate.py `run_gate` for the union of the pieces gated in
    `folders` (in union order): their results merged, the cross-piece repeats found."""

    def validate_union(
        frame: Frame,
        suite: Any,
        values: dict[str, Any],
        unavailable: dict[str, str],
        chunk_rows: int,
        spill: Path,
    ) -> tuple[list[Check], dict[str, Any]]:
        checks, to_run = plan(names(frame), suite, values, unavailable)
        saved = [_load(f, suite_name) for f in folders]
        offsets = _offsets(saved, frame, folders)
        other = [
            f.name for f, s in zip(folders, saved, strict=True) if s["columns"] != names(frame)
        ]
        if other:
            raise QualityGateError(
                f"quality gate {suite_name!r}: pieces {other} were gated with other columns "
                "than their union's: gate them again",
                suite=suite_name,
            )
        whole = [e for e in to_run if chunks.hash_key([e]) is False]
        results, meta = run(frame, suite, whole, values, chunk_rows, spill)
        by_id = [{r.expectation_config.id: r for r in s["results"]} for s in saved]
        for exp in to_run:
            if exp in whole:
                continue
            missing = [
                f.name for f, got in zip(folders, by_id, strict=True) if exp["id"] not in got
            ]
            if missing:
                raise QualityGateError(
                    f"quality gate {suite_name!r}: pieces {missing} were gated without "
                    f"expectation {exp['id']} ({exp['type']}): gate them again",
                    suite=suite_name,
                )
            parts = [_shifted(got[exp["id"]], off) for got, off in zip(by_id, offsets, strict=True)]
            if chunks.hash_key([exp]):
                extra = _across(exp, frame, folders, offsets, suite, suite_name, values)
                if extra is not None:
                    results.append(chunks.merge_extra(parts, extra, _RESULT_FORMAT))
                    continue
            results.append(chunks.merge([[p] for p in parts], _RESULT_FORMAT)[0])
        return finish(checks, results, suite.name, meta or saved[0]["meta"])

    return validate_union


def _load(folder: Path, suite: str) -> dict[str, Any]:
    path = results_path(folder, suite)
    if not path.is_file():
        raise QualityGateError(
            f"quality gate {suite!r}: piece {folder.name} was not gated (no {path.name}): "
            "run its gate task first",
            suite=suite,
        )
    return dict(pickle.loads(path.read_bytes()))


def _offsets(saved: list[dict[str, Any]], frame: Frame, folders: list[Path]) -> list[int]:
    """Each piece's first row in the union; the union must be the pieces, in order."""
    offsets, total = [], 0
    for s in saved:
        offsets.append(total)
        total += int(s["rows"])
    if total != chunks.height(frame):
        raise QualityGateError(
            f"the gated pieces ({', '.join(f.name for f in folders)}) hold {total:,} rows, "
            f"their union {chunks.height(frame):,}: a piece was read again after its gate; "
            "gate it again",
            suite="",
        )
    return offsets


def _shifted(result: Any, offset: int) -> Any:
    """The piece's result (loaded for this merge alone) with its row positions made the
    union's."""
    found = result.result or {}
    if not offset or not found.get("unexpected_index_list"):
        return result
    result.result = {
        **found,
        **{
            key: [int(i) + offset for i in found[key]]
            for key in ("unexpected_index_list", "partial_unexpected_index_list")
            if found.get(key)
        },
    }
    return result


def _across(
    exp: dict[str, Any],
    frame: Frame,
    folders: list[Path],
    offsets: list[int],
    suite: Any,
    suite_name: str,
    values: dict[str, Any],
) -> Any:
    """The uniqueness expectation's GX result on every row whose key occurs in more than one
    piece, or None when no key does. Found from the pieces' key hashes, a share at a time so
    the memory is bounded whatever the rows; a hash shared by different keys only adds rows
    GX then finds unique."""
    if len(folders) < 2:
        return None
    column = exp["id"]
    scans = [pl.scan_parquet(keys_path(f, suite_name)).select(column) for f in folders]
    shares = max(1, -(-chunks.height(frame) // KEY_ROWS))
    shared: list[pl.Series] = []
    for share in range(shares):
        mine = pl.col(column) % shares == share
        per_piece = [s.filter(mine).drop_nulls().unique() for s in scans]
        found = pl.concat(per_piece).filter(pl.col(column).is_duplicated()).unique().collect()
        shared.append(found.get_column(column))
    repeated = pl.concat(shared)
    if repeated.is_empty():
        return None
    rows = pl.concat(
        [
            s.with_row_index("__pos")
            .filter(pl.col(column).is_in(repeated.implode()))
            .select(pl.col("__pos").cast(pl.Int64) + off)
            for s, off in zip(scans, offsets, strict=True)
        ]
    ).collect()["__pos"]
    columns = _needed_columns([exp], names(frame))
    at = pl.col("__pos").cast(pl.Int64).is_in(rows.implode())
    gathered = (
        frame.lazy().with_row_index("__pos").filter(at).select(columns).collect(engine="streaming")
    )
    batch = chunks._pandas(gathered, rows.sort().to_numpy())
    return run_on_pandas(batch, suite, [exp], values)[0]
