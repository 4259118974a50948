"""The great_expectations boundary: run a suite on a polars frame, get one `Check` per expectation.

GX has no polars support, so the frame becomes pandas here and nowhere else; its default
RangeIndex makes GX's `unexpected_index_list` the row positions of the polars frame. An
expectation whose columns are absent from the frame (an optional column the source lacks; a
missing required column is caught by the suite's column-set check) or whose parameter has no
value is skipped and reported, never run into an exception.
"""

from __future__ import annotations

import copy
import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from flows87.pipeline.quality import chunks
from flows87.pipeline.quality.suites import columns_of, import_gx, parameters_of

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations import ExpectationSuite

EXAMPLES = 5
"""Example values per failed expectation in the report and the result JSON."""
_RESULT_FORMAT = {
    # COMPLETE for unexpected_index_list, the failing row positions. A cheaper SUMMARY pass
    # first would save about 0.5 s of 9 on 5M rows, and the failed expectations would still
    # need COMPLETE: it counts `partial_unexpected_counts` over the first 200 failing values,
    # SUMMARY over the first 5, so the result JSON would change.
    "result_format": "COMPLETE",
    "partial_unexpected_count": EXAMPLES,
    "return_unexpected_index_query": False,  # a query text listing every failing index
}
_WHOLE_TABLE_TYPES = {
    "expect_table_column_count_to_equal",
    "expect_table_column_count_to_be_between",
    "expect_table_columns_to_match_ordered_list",
}
_BULKY = ("unexpected_list", "unexpected_index_list", "unexpected_index_query")


@dataclass
class Check:
    """What one expectation of a suite found, in the suite's order."""

    index: int
    type: str
    columns: list[str]
    description: str  # type(columns, arguments): the text that starts a quarantine reason
    on_fail: str
    notes: str
    status: str = "skipped"  # passed / failed / error / skipped
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    detail: str = ""  # observed value, missing columns, the exception, or why skipped
    rows: list[int] = field(default_factory=list)  # failing row positions
    condition: str | None = None  # the row_condition, if any

    @property
    def name(self) -> str:
        """`type(columns)`, plus `where <condition>`: short enough for lists and messages."""
        name = f"{self.type}({', '.join(self.columns)})" if self.columns else self.type
        return f"{name} where {self.condition}" if self.condition else name


Frame = pl.DataFrame | pl.LazyFrame
"""A gate's table: in memory, or a lazy scan (a large table read a chunk at a time)."""

Validated = Callable[..., tuple[list[Check], dict[str, Any]]]
"""What validates a gate's table: `validate`, or the merge of its pieces' results
(quality/pieces.py `merged`), called as validate(frame, suite, values, unavailable,
chunk_rows, spill)."""


def names(frame: Frame) -> list[str]:
    return frame.columns if isinstance(frame, pl.DataFrame) else frame.collect_schema().names()


def with_derived(
    frame: Frame, suite: ExpectationSuite, values: dict[str, Any]
) -> tuple[Frame, dict[str, str]]:
    """Add the suite's derived columns that can be computed; say why the others cannot.

    `{"column": c, "not_in": p}` is `c` where its value is not in the list parameter `p`, else
    null: membership in polars, then a cheap null check in GX. GX re-serialises an expectation's
    kwargs about a hundred times per validation, so a `value_set` of many account ids is slow
    (17 s more per million rows for 90,000 ids) while this takes about 0.2 s.
    """
    added, unavailable = [], {}
    for name, spec in suite.meta["derived_columns"].items():
        if spec["column"] not in names(frame):
            unavailable[name] = f"skipped: column {spec['column']!r} not in the frame"
        elif values.get(spec["not_in"]) is None:
            unavailable[name] = f"skipped: parameter {spec['not_in']!r} not given"
        else:
            known = pl.Series(values[spec["not_in"]], dtype=pl.String).implode()
            column = pl.col(spec["column"])
            added.append(pl.when(column.is_in(known)).then(None).otherwise(column).alias(name))
    return frame.with_columns(added), unavailable


def validate(
    frame: Frame,
    suite: ExpectationSuite,
    values: dict[str, Any],
    unavailable: dict[str, str] | None = None,
    chunk_rows: int = chunks.CHUNK_ROWS,
    spill: Path | None = None,
) -> tuple[list[Check], dict[str, Any]]:
    """Validate `frame` with `suite`; return the checks and the GX result as JSON (without the
    per-row lists, which the quarantine file holds).

    `unavailable` maps derived columns that could not be computed to why (see `with_derived`).
    A frame of more than `chunk_rows` rows is validated in chunks (quality/chunks.py); chunks
    cut by a hash of a lazy frame's rows are written under `spill` (a folder of the run).
    """
    checks, to_run = plan(names(frame), suite, values, unavailable)
    results, meta = run(frame, suite, to_run, values, chunk_rows, spill)
    return finish(checks, results, suite.name, meta)


def plan(
    present: list[str],
    suite: ExpectationSuite,
    values: dict[str, Any],
    unavailable: dict[str, str] | None = None,
) -> tuple[list[Check], list[dict[str, Any]]]:
    """A `Check` per expectation of the suite (a skipped one says why), and the expectations
    to run on a frame of these columns (each with its index in the suite as `id`)."""
    checks: list[Check] = []
    to_run: list[dict[str, Any]] = []
    for i, exp in enumerate(suite.expectations, start=1):
        config = exp.configuration
        check = Check(
            index=i,
            type=config.type,
            columns=columns_of(config.kwargs),
            description=describe(config.type, config.kwargs, values),
            on_fail=config.meta["on_fail"],
            notes=config.meta["notes"],
            condition=_condition_text(config.kwargs.get("row_condition")),
        )
        checks.append(check)
        why_skip = _skip_reason(
            check.columns, parameters_of(config.kwargs), present, values, unavailable or {}
        )
        if why_skip:
            check.detail = why_skip
            continue
        to_run.append(
            {
                "id": str(i),
                "type": config.type,
                "kwargs": copy.deepcopy(config.kwargs),
                "meta": config.meta,
            }
        )
    return checks, to_run


def run(
    frame: Frame,
    suite: ExpectationSuite,
    to_run: list[dict[str, Any]],
    values: dict[str, Any],
    chunk_rows: int = chunks.CHUNK_ROWS,
    spill: Path | None = None,
) -> tuple[list[Any], dict[str, Any]]:
    """GX's results of these expectations on `frame` (with their per-row lists), and the
    suite result's meta."""
    if not to_run:
        return [], {}
    gx = import_gx()
    present = names(frame)
    parameters = {p: values[p] for e in to_run for p in parameters_of(e["kwargs"])}
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in to_run:
        groups.setdefault(tuple(_needed_columns([item], present)), []).append(item)
    results: list[Any] = []
    meta: dict[str, Any] = {}
    large = chunks.height(frame) > chunk_rows
    whole = None
    if not large:
        # one pandas copy of the checked columns; its RangeIndex makes GX's row indexes polars
        # positions
        needed = [c for c in present if any(c in cols for cols in groups)]
        whole = frame.lazy().select(needed).collect().to_pandas()
    with _batches() as validator_of:
        for columns, expectations in groups.items():
            run_suite = gx.ExpectationSuite(
                name=suite.name, expectations=expectations, meta=suite.meta
            )
            used = {p: v for p, v in parameters.items() if p in _parameters(expectations)}
            key = chunks.hash_key(expectations) if large else False
            if key is False:
                batch = (
                    whole[list(columns)]
                    if whole is not None
                    else frame.lazy().select(columns).collect().to_pandas()
                )
                result = validator_of(batch).validate_expectation_suite(
                    run_suite, expectation_parameters=used
                )
                del batch
                results.extend(result.results)
                meta = meta or dict(result.meta)
                continue
            parts = []
            for piece in chunks.pieces(frame, list(columns), key, chunk_rows, spill):
                result = validator_of(piece).validate_expectation_suite(
                    run_suite, expectation_parameters=used
                )
                del piece
                parts.append(sorted(result.results, key=lambda r: int(r.expectation_config.id)))
                meta = meta or dict(result.meta)
            results.extend(chunks.merge(parts, _RESULT_FORMAT))
    del whole
    return results, meta


def run_on_pandas(
    frame: pd.DataFrame,
    suite: ExpectationSuite,
    to_run: list[dict[str, Any]],
    values: dict[str, Any],
) -> list[Any]:
    """GX's results of these expectations on a pandas frame as it is (its index the rows'
    positions): a few rows gathered from a larger table."""
    gx = import_gx()
    used = {p: values[p] for e in to_run for p in parameters_of(e["kwargs"])}
    with _batches() as validator_of:
        run_suite = gx.ExpectationSuite(name=suite.name, expectations=to_run, meta=suite.meta)
        return list(
            validator_of(frame)
            .validate_expectation_suite(run_suite, expectation_parameters=used)
            .results
        )


def finish(
    checks: list[Check], results: list[Any], name: str, meta: dict[str, Any]
) -> tuple[list[Check], dict[str, Any]]:
    """The checks filled from GX's results, and the suite result as JSON without the per-row
    lists."""
    results = sorted(results, key=lambda r: int(r.expectation_config.id))
    by_index = {c.index: c for c in checks}
    for res in results:
        _fill(by_index[int(res.expectation_config.id)], res)
        _shrink(res)
    return checks, _suite_result(name, results, meta)


def _parameters(expectations: list[dict[str, Any]]) -> set[str]:
    return {p for e in expectations for p in parameters_of(e["kwargs"])}


def _suite_result(name: str, results: list[Any], meta: dict[str, Any]) -> dict[str, Any]:
    """One suite result from the per-column-group results, as GX's Validator builds it."""
    from great_expectations.core import ExpectationSuiteValidationResult
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    statistics = calc_validation_statistics(results)
    # the batch fingerprint, when GX computed one, was of one column group only
    markers = {k: v for k, v in (meta.get("batch_markers") or {}).items() if "fingerprint" not in k}
    return ExpectationSuiteValidationResult(
        results=results,
        success=statistics.success,
        suite_name=name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta={**meta, "batch_markers": markers} if meta else meta,
    ).to_json_dict()


def describe(type_: str, kwargs: dict[str, Any], values: dict[str, Any]) -> str:
    """`type(columns, arguments)`: `expect_column_values_to_be_between(amount, min 0 exclusive)`."""
    args = list(columns_of(kwargs))
    for key, label, strict in (
        ("min_value", "min", "strict_min"),
        ("max_value", "max", "strict_max"),
    ):
        if kwargs.get(key) is not None:
            args.append(
                f"{label} {_show(kwargs[key], values)}"
                + (" exclusive" if kwargs.get(strict) else "")
            )
    for key, label in (("regex", "regex"), ("type_", "type"), ("value_set", "in")):
        if kwargs.get(key) is not None:
            args.append(f"{label} {_show(kwargs[key], values)}")
    condition = _condition_text(kwargs.get("row_condition"))
    if condition:
        args.append(f"where {condition}")
    return f"{type_}({', '.join(args)})" if args else type_


def _show(value: Any, values: dict[str, Any]) -> str:
    if isinstance(value, dict) and "$PARAMETER" in value:
        name = value["$PARAMETER"]
        resolved = values.get(name)
        if isinstance(resolved, list):
            return f"{name} ({len(resolved)} values)"
        return f"{name}={resolved}"
    if isinstance(value, list):
        return (
            "{" + ", ".join(map(str, value)) + "}" if len(value) <= 12 else f"a set of {len(value)}"
        )
    return str(value)


def _condition_text(value: Any) -> str | None:
    """A pandas row_condition as text; GX keeps a text condition as a pass-through dict."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("pass_through_filter"), str):
        return value["pass_through_filter"]
    return None


def _skip_reason(
    columns: list[str],
    params: list[str],
    present: list[str],
    values: dict[str, Any],
    unavailable: dict[str, str],
) -> str:
    derived = [unavailable[c] for c in columns if c in unavailable]
    if derived:
        return derived[0]
    absent = [c for c in columns if c not in present]
    if absent:
        return f"skipped: column(s) {absent} not in the frame"
    unset = [p for p in params if values.get(p) is None]
    if unset:
        return f"skipped: parameter(s) {unset} not given and without default"
    return ""


def _needed_columns(expectations: list[dict[str, Any]], present: list[str]) -> list[str]:
    """The columns the expectations read, in frame order: GX converts and fingerprints (hashes)
    every column it is given, about 0.45 s per million text values. All columns when an
    expectation looks at the table's whole column list."""
    needed: set[str] = set()
    for exp in expectations:
        kwargs = exp["kwargs"]
        if exp["type"] in _WHOLE_TABLE_TYPES or kwargs.get("exact_match"):
            return present
        needed.update(columns_of(kwargs), kwargs.get("column_set") or [])
        condition = kwargs.get("row_condition")
        if condition is not None and _condition_text(condition) is None:
            return present  # a structured condition: do not guess its columns
        needed.update(re.findall(r"[A-Za-z_]\w*", _condition_text(condition) or ""))
    # at least one column: a frame without columns has no rows either (row-count checks)
    return [c for c in present if c in needed] or present[:1]


@contextmanager
def _batches() -> Iterator[Callable[[pd.DataFrame], Any]]:
    """A function giving a GX validator over a pandas frame, all through one fresh ephemeral
    context (nothing written to disk); each validator's batch is let go when the next is made.

    The suite runs once per group of expectations that read the same columns, each on a
    pandas copy of those columns only: for every column-map metric GX's pandas engine copies
    its whole batch without the column's nulls (`df[df[column].notnull()]`), so on one batch of
    all the checked columns the copies grow with (expectations x columns). Per group, the
    features gate on 1.4M rows takes a fifth of the time.

    Each validator is GX's own `Validator`, which `Batch.validate` and
    `ValidationDefinition.run` both use: built directly, it loads the frame once, where
    `batch_definition.get_batch(...).validate(...)` loads it twice, and loading fingerprints
    (hashes) every value. Unlike `ValidationDefinition.run` it does not serialise the complete
    result into the context's store.
    """
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine
    from great_expectations.validator.v1_validator import Validator

    # GX fingerprints (hashes every value of) a pandas batch below its HASH_THRESHOLD of 1 GB
    # into the result's `meta.batch_markers.pandas_data_fingerprint`: about 8 s of a 16 s gate
    # on 5M transactions. Nothing reads it (run.json keeps the input's sha256) and a batch here
    # is one group of columns, so none is computed: the key is absent, as GX leaves it out for a
    # batch above 1 GB.
    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("flows87").add_dataframe_asset("frame")
    definition = asset.add_batch_definition_whole_dataframe("whole")
    last: list[Any] = []

    def validator_of(frame: pd.DataFrame) -> Any:
        while last:
            _release(last.pop())
        validator = Validator(
            batch_definition=definition,
            batch_parameters={"dataframe": frame},
            result_format=_RESULT_FORMAT,
        )
        last.append(validator)
        return validator

    try:
        yield validator_of
    finally:
        while last:
            _release(last.pop())
        # an optimisation only (memory): the validation result stands whatever GX does here
        with suppress(Exception):
            context.data_sources.delete("flows87")
        gc.collect()  # GX's objects refer to each other in cycles
        _return_arrow_memory()


def _release(validator: Any) -> None:
    """Let go of the pandas copy of a validated frame.

    `gx.get_context` keeps the ephemeral context as GX's global project context until the next
    one, and through its datasource and execution engine the batch, so the pandas copy of the
    last gated frame (1.3 GB for 5M transactions) stayed in memory through the next stages of
    `flows87 run`. Releasing only saves memory, so a GX version without these attributes loses
    nothing else."""
    try:
        if validator._wrapped_validator_cache is not None:
            engine = validator._wrapped_validator_cache.execution_engine
            engine.batch_manager.reset_batch_cache()
        validator._batch_parameters = None
        validator._wrapped_validator_cache = None
    except Exception:
        pass


def _return_arrow_memory() -> None:
    """Give the memory of the freed pandas copy back to the system now.

    Its text columns live in pyarrow's memory pool, which keeps freed memory for reuse by
    pyarrow only (about 0.6 GB after the raw transactions gate at 5M rows): polars, which does
    the next stage's work, cannot use it."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _fill(check: Check, res: Any) -> None:
    result: dict[str, Any] = res.result or {}
    error = _exception_message(res.exception_info)
    if error:
        check.status, check.detail = "error", error
        return
    check.status = "passed" if res.success else "failed"
    check.unexpected_count = result.get("unexpected_count")
    check.examples = [_example(v) for v in (result.get("partial_unexpected_list") or [])[:EXAMPLES]]
    if "details" in result:  # a column-set check: only the missing columns matter
        missing = (result["details"].get("mismatched") or {}).get("missing")
        check.detail = f"missing: {missing}" if missing else ""
    elif "observed_value" in result:
        check.detail = f"observed {result['observed_value']}"
    if not res.success and check.on_fail == "quarantine":
        check.rows = [int(i) for i in result.get("unexpected_index_list") or []]


def _example(value: Any) -> Any:
    """pandas shows a null string as NaN; the report says null."""
    return "null" if value is None or (isinstance(value, float) and value != value) else value


def _exception_message(info: Any) -> str | None:
    """GX reports an exception either flat or keyed by metric id; return the first message."""
    if not isinstance(info, dict):
        return None
    entries = (
        [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    )
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "exception without message")
    return None


def _shrink(res: Any) -> None:
    """Drop the per-row lists: the rows are in the quarantine file, and the JSON stays small."""
    for key in _BULKY:
        (res.result or {}).pop(key, None)
