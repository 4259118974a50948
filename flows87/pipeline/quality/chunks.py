"""A suite run in bounded pieces of rows, with the same result as one run on the whole table.

GX validates pandas frames: at 20M transactions one pandas copy of the checked columns (text as
Python objects) took 8 GB beside the polars frame, so a large table is validated in chunks of
at most `CHUNK_ROWS` rows, each a pandas frame whose index is the rows' positions in the whole
table (GX's `unexpected_index_list` are then whole-table positions). Row-by-row expectations
see any cut of the rows; a uniqueness expectation sees every duplicate of a value only when the
chunks are cut by a hash of its columns, so a group of expectations holding one is cut that way.

The chunks' results are merged into the one GX gives for the whole table: a map expectation's
counts are summed and its lists joined in row order, then GX's own `_format_map_output` builds
the result (percentages, partial lists, the counts of the most common unexpected values); the
few aggregate expectations the suites use are merged by what they observe. A group with any
other expectation (one whose chunks cannot be merged) runs on the whole table as before.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 6_000_000
"""Rows per pandas chunk: about 0.5 GB per text column in pandas at 2M rows (6M: see
stages/ingest.LARGE_ROWS for why)."""
HASH_SEED = 17
_UNIQUE_KEYS = {
    "expect_column_values_to_be_unique": "column",
    "expect_compound_columns_to_be_unique": "column_list",
}
_SAME_EVERYWHERE = {
    # what these observe is the frame's columns or their types, the same in every chunk
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
}
_ROW_COUNT = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
_ROW_LOCAL_PREFIXES = (
    "expect_column_values_to_",
    "expect_column_pair_values_",
    "expect_multicolumn_sum_",
    "expect_select_column_values_to_be_unique_within_record",
)


def height(frame: pl.DataFrame | pl.LazyFrame) -> int:
    if isinstance(frame, pl.DataFrame):
        return frame.height
    return int(frame.select(pl.len()).collect().item())


def hash_key(expectations: list[dict[str, Any]]) -> list[str] | None | Literal[False]:
    """How a group's rows may be cut: by a hash of these columns (it checks uniqueness), in
    ranges (None), or not at all (False: an expectation whose chunk results cannot be merged,
    or uniqueness over two different keys)."""
    keys: set[tuple[str, ...]] = set()
    for exp in expectations:
        kind, kwargs = exp["type"], exp["kwargs"]
        if kind in _UNIQUE_KEYS:
            value = kwargs[_UNIQUE_KEYS[kind]]
            keys.add(tuple([value] if isinstance(value, str) else value))
        elif kind in _ROW_COUNT:
            if any(isinstance(kwargs.get(k), dict) for k in ("min_value", "max_value", "value")):
                return False  # a $PARAMETER bound: leave it to GX
        elif kind not in _SAME_EVERYWHERE and not kind.startswith(_ROW_LOCAL_PREFIXES):
            return False
        if kwargs.get("mostly") is not None:
            return False  # success is then a share of all rows: kept whole to stay simple
    if len(keys) > 1:
        return False
    return list(keys.pop()) if keys else None


def pieces(
    frame: pl.DataFrame | pl.LazyFrame,
    columns: list[str],
    key: list[str] | None,
    rows: int,
    spill: Path | None = None,
) -> Iterator[pd.DataFrame]:
    """The group's columns in chunks of about `rows` rows, each a pandas frame indexed by the
    rows' positions in `frame`, in row order within a chunk.

    Cut by a hash of `key`, a lazy `frame` (a scan of a large file) is read once and each
    chunk's rows written to a file of its own under `spill` (`_spilled`); without `spill`, or
    for a frame in memory, each chunk filters the frame."""
    n = height(frame)
    k = max(1, -(-n // rows))
    lazy = frame.lazy().select(columns)
    if key is None:
        for start in range(0, n, rows):
            yield _pandas(lazy.slice(start, rows).collect(), start)
        return
    bucket = pl.struct(key).hash(HASH_SEED) % k
    numbered = lazy.with_row_index("__pos")
    if spill is not None and isinstance(frame, pl.LazyFrame) and k > 1:
        yield from _spilled(numbered, bucket, spill)
        return
    for i in range(k):
        part = numbered.filter(bucket == i).collect()
        if part.height:
            yield _pandas(part.drop("__pos"), part["__pos"].to_numpy())


def _spilled(numbered: pl.LazyFrame, bucket: pl.Expr, spill: Path) -> Iterator[pd.DataFrame]:
    """Each hash chunk from a file of its own, written in one streaming pass over the input.

    Filtering the scan once per chunk read and hashed the whole file k times for k chunks, so
    a uniqueness check cost k x n: the raw gate took 67 s at 20M transactions (4 chunks) and
    426 s at 50M (9 chunks)."""
    spill.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=spill, prefix="chunks-") as tmp:
        numbered.with_columns(bucket.alias("__chunk")).sink_parquet(
            pl.PartitionBy(tmp, key="__chunk", include_key=False), engine="streaming", mkdir=True
        )
        for folder in sorted(Path(tmp).iterdir(), key=lambda f: int(f.name.split("=")[1])):
            part = pl.read_parquet(folder / "*.parquet").sort("__pos")
            shutil.rmtree(folder)  # read: its disk space is free for the next
            yield _pandas(part.drop("__pos"), part["__pos"].to_numpy())
            del part


def _pandas(frame: pl.DataFrame, index: Any) -> pd.DataFrame:
    import pandas as pd

    out = frame.to_pandas()
    if isinstance(index, int):
        out.index = pd.RangeIndex(index, index + frame.height)
    else:
        out.index = pd.Index(index.astype("int64"))
    return out


def merge(parts: list[list[Any]], result_format: dict[str, Any]) -> list[Any]:
    """One result per expectation from the chunks' results (each list in the same order)."""
    return [_merge_one(list(same), result_format) for same in zip(*parts, strict=True)]


def _merge_one(results: list[Any], result_format: dict[str, Any]) -> Any:
    failed = [r for r in results if (r.exception_info or {}).get("raised_exception")]
    if failed:
        return failed[0]
    if len(results) == 1:
        return results[0]
    kind = results[0].expectation_config.type
    out = copy.copy(results[0])
    if "element_count" in (results[0].result or {}):
        out.result, out.success = _merge_map(results, result_format)
    elif kind in _ROW_COUNT:
        n = sum(int(r.result["observed_value"]) for r in results)
        out.result = {**results[0].result, "observed_value": n}
        out.success = _count_ok(n, results[0].expectation_config.kwargs)
    else:  # observed the same in every chunk: a failing chunk's result stands for all
        out = next((r for r in results if not r.success), results[0])
    return out


def _merge_map(
    results: list[Any], result_format: dict[str, Any], extra: Any = None
) -> tuple[dict[str, Any], bool]:
    """One map expectation's result from its chunks' results; `extra` (see `merge_extra`)
    adds failing rows without adding to the rows counted."""
    from great_expectations.constants import MAX_RESULT_RECORDS
    from great_expectations.expectations.expectation import _format_map_output
    from great_expectations.expectations.expectation_configuration import parse_result_format

    first = results[0].result
    element = sum(r.result["element_count"] for r in results)
    missing = sum(r.result.get("missing_count") or 0 for r in results)
    unexpected = sum(r.result["unexpected_count"] for r in results)
    success = all(r.success for r in results)  # no `mostly` here (see hash_key)
    found: set[int] = set()
    values: dict[int, Any] = {}
    for r in results:
        found.update(_listed(r, values))
    if extra is not None:
        more = set(_listed(extra, values)) - found
        found |= more
        unexpected += len(more)
        success = success and not more
    rows = sorted(found)
    # GX lists the values of the first MAX_RESULT_RECORDS failing rows only (each chunk's
    # first); the first of the whole table are among them
    shown = rows[:MAX_RESULT_RECORDS]
    merged = _format_map_output(
        result_format=parse_result_format(result_format),
        success=success,
        element_count=element,
        nonnull_count=element - missing if "missing_count" in first else None,
        unexpected_count=unexpected,
        unexpected_list=[values[i] for i in shown if i in values],
        unexpected_index_list=rows,
    )
    return merged["result"], success


def _listed(result: Any, values: dict[int, Any]) -> list[int]:
    """A result's failing rows; the values GX listed (of the first rows) go into `values`."""
    rows = [int(i) for i in result.result.get("unexpected_index_list") or []]
    values.update(zip(rows, result.result.get("unexpected_list") or [], strict=False))
    return rows


def merge_extra(results: list[Any], extra: Any, result_format: dict[str, Any]) -> Any:
    """A uniqueness expectation's result from its results on parts of a table cut any way (each
    sees the repeats within its part) and `extra`, its result on the rows whose value repeats
    across parts (all of them, gathered: it sees those repeats): the result on the whole."""
    failed = [r for r in [*results, extra] if (r.exception_info or {}).get("raised_exception")]
    if failed:
        return failed[0]
    out = copy.copy(results[0])
    out.result, out.success = _merge_map(results, result_format, extra)
    return out


def _count_ok(n: int, kwargs: dict[str, Any]) -> bool:
    if "value" in kwargs:
        return bool(n == kwargs["value"])
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    ok = low is None or (n > low if kwargs.get("strict_min") else n >= low)
    return ok and (high is None or (n < high if kwargs.get("strict_max") else n <= high))
