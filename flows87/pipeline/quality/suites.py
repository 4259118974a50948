"""Expectation suites: JSON files in expectations/, reviewed like code, loaded into GX.

A suite file is what `ExpectationSuite.to_json_dict()` writes, plus conventions the gate
relies on, checked here so a typo fails loudly at load time instead of silently weakening a gate
(GX itself drops an expectation it cannot build with only a log line):

- every expectation's `meta` has `on_fail` (quarantine / warn / fail) and `notes` (why);
- every `{"$PARAMETER": name}` is declared in the suite's `meta.parameters` with a `kind`
  (datetime / string_list) and a `default` (null: no default, the expectation is skipped);
- `meta.derived_columns` name columns the gate adds for GX only: `{"column": c, "not_in": p}`
  is `c` where its value is not in the string_list parameter `p`, else null (see validate.py).

great_expectations is imported inside functions: it takes seconds to import, and stages that only
import `flows87.pipeline.quality` for its types should not pay for it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import polars as pl

from flows87 import catalogue
from flows87.errors import ConfigError

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

SUITES_DIR = catalogue.suites_dir()
"""The bundled suites (flows87.catalogue: the wheel's copy, or the checkout's expectations/)."""

ON_FAIL = ("quarantine", "warn", "fail")
PARAMETER_KINDS = ("datetime", "string_list")
_SUITE_KEYS = {"name", "expectations", "meta", "notes", "suite_parameters", "id"}
_COLUMN_KEYS = ("column", "column_A", "column_B", "column_list")


def import_gx() -> ModuleType:
    """great_expectations, imported on first use, with its INFO logging (hundreds of lines
    once airflow has configured logging) turned down to warnings."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx


def import_gx_in_background() -> threading.Thread:
    """Start importing great_expectations (about 2.5 s of Python) on a thread, so that it
    overlaps the input's parsing, which polars does on its own threads without the GIL. Join
    the thread before the first gate; a failed import raises again, with its message, there."""
    thread = threading.Thread(target=_import_quietly, name="import-great-expectations", daemon=True)
    thread.start()
    return thread


def _import_quietly() -> None:
    with contextlib.suppress(Exception):  # the gate's own import reports the error
        import_gx()


def suite_path(suite: str, suites_dir: str | Path | None = None) -> Path:
    return Path(suites_dir if suites_dir is not None else SUITES_DIR) / f"{suite}.json"


def load_suite(suite: str, suites_dir: str | Path | None = None) -> ExpectationSuite:
    """Read expectations/<suite>.json into a GX suite; a defect is a ConfigError naming the file."""
    gx = import_gx()

    path = suite_path(suite, suites_dir)
    raw = _read_json(path)
    _check_suite(raw, suite, path)
    for i, exp in enumerate(raw["expectations"], start=1):
        _check_expectation(exp, i, raw["meta"]["parameters"], path)
    loaded = gx.ExpectationSuite(**raw)
    if len(loaded.expectations) != len(raw["expectations"]):  # GX drops what it cannot build
        raise ConfigError("great_expectations dropped an expectation it could not build", file=path)
    return loaded


def columns_of(kwargs: dict[str, Any]) -> list[str]:
    """The columns an expectation reads (row_condition columns are not parsed)."""
    cols: list[str] = []
    for key in _COLUMN_KEYS:
        value = kwargs.get(key)
        if isinstance(value, str):
            cols.append(value)
        elif isinstance(value, list):
            cols.extend(value)
    return cols


def parameters_of(kwargs: dict[str, Any]) -> list[str]:
    """Names of the suite parameters an expectation uses (`{"$PARAMETER": name}` values)."""
    return [v["$PARAMETER"] for v in kwargs.values() if isinstance(v, dict) and "$PARAMETER" in v]


def resolve_parameters(
    suite: ExpectationSuite, given: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Values for the suite's declared parameters: given, else the suite's default, else None.

    Returns (values, source) where source[name] is "given", "default" or "missing". Datetimes
    become ISO text in UTC (naive ones are taken as UTC), so GX compares them with the UTC `ts`
    column; string lists become sorted unique text. Undeclared names in `given` are ignored, so
    one dict can serve several suites; the report lists what each suite used.
    """
    given = given or {}
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, spec in suite.meta["parameters"].items():
        if given.get(name) is not None:
            value, source[name] = given[name], "given"
        elif spec["default"] is not None:
            value, source[name] = spec["default"], "default"
        else:
            values[name], source[name] = None, "missing"
            continue
        coerce = _as_utc_iso if spec["kind"] == "datetime" else _as_string_list
        values[name] = coerce(name, value, suite.name)
    return values, source


def _as_utc_iso(name: str, value: Any, suite: str) -> str:
    dt = _to_datetime(value)
    if dt is None:
        raise ConfigError(
            f"suite {suite}: parameter {name!r} must be a date or datetime, got {value!r}",
            hint="a datetime, or ISO 8601 text such as 2024-01-31T00:00:00+00:00",
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat()


def _to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _as_string_list(name: str, value: Any, suite: str) -> list[str]:
    try:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise TypeError("not a collection")
        series = value if isinstance(value, pl.Series) else pl.Series(name, list(value))
        return series.cast(pl.String).drop_nulls().unique().sort().to_list()
    except (TypeError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(
            f"suite {suite}: parameter {name!r} must be a list of ids ({exc})",
            hint="a list, set or polars Series of account ids",
        ) from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        names = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise ConfigError(
            "no such expectation suite", file=path, hint=f"suites in {path.parent}: {names}"
        ) from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", file=path
        ) from None
    except ValueError as exc:  # raised by _no_duplicate_keys
        raise ConfigError(str(exc), file=path) from None
    if not isinstance(data, dict):
        raise ConfigError("a suite must be a JSON object", file=path)
    return data


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"duplicate key(s) {dupes}: the later value would silently win")
    return dict(pairs)


def _check_suite(raw: dict[str, Any], suite: str, path: Path) -> None:
    unknown = sorted(set(raw) - _SUITE_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown top-level keys {unknown}", file=path, hint=f"allowed: {sorted(_SUITE_KEYS)}"
        )
    if raw.get("name") != suite:
        raise ConfigError(
            f"'name' is {raw.get('name')!r}, expected {suite!r} (the file's name)", file=path
        )
    if not isinstance(raw.get("expectations"), list) or not raw["expectations"]:
        raise ConfigError("'expectations' must be a non-empty list", file=path)
    meta = raw.setdefault("meta", {})
    if not isinstance(meta, dict):
        raise ConfigError("'meta' must be an object", file=path)
    params = meta.setdefault("parameters", {})
    if not isinstance(params, dict):
        raise ConfigError(
            "'meta.parameters' must be an object of name: {kind, default, notes}", file=path
        )
    for name, spec in params.items():
        if not isinstance(spec, dict) or spec.get("kind") not in PARAMETER_KINDS:
            raise ConfigError(
                f"parameter {name!r} needs 'kind', one of {list(PARAMETER_KINDS)}", file=path
            )
        if "default" not in spec:
            raise ConfigError(f"parameter {name!r} needs 'default' (null for none)", file=path)
    derived = meta.setdefault("derived_columns", {})
    if not isinstance(derived, dict):
        raise ConfigError(
            "'meta.derived_columns' must be an object of name: {column, not_in}", file=path
        )
    for name, spec in derived.items():
        source_ok = isinstance(spec, dict) and isinstance(spec.get("column"), str)
        if not source_ok or params.get(spec.get("not_in"), {}).get("kind") != "string_list":
            raise ConfigError(
                f"derived column {name!r} needs 'column' and 'not_in' (a string_list parameter)",
                file=path,
            )


def _check_expectation(exp: Any, i: int, params: dict[str, Any], path: Path) -> None:
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    where = f"expectation #{i}"
    if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
        raise ConfigError(f"{where}: must be an object with a 'type'", file=path)
    where = f"expectation #{i} ({exp['type']})"
    meta = exp.get("meta")
    if not isinstance(meta, dict) or meta.get("on_fail") not in ON_FAIL:
        raise ConfigError(
            f"{where}: meta.on_fail must be one of {list(ON_FAIL)}",
            file=path,
            hint="quarantine = failing rows set aside, warn = reported only, fail = the run stops",
        )
    if not isinstance(meta.get("notes"), str) or not meta["notes"].strip():
        raise ConfigError(f"{where}: meta.notes must say why the check exists", file=path)
    kwargs = exp.get("kwargs")
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{where}: 'kwargs' must be an object", file=path)
    undeclared = [p for p in parameters_of(kwargs) if p not in params]
    if undeclared:
        raise ConfigError(
            f"{where}: parameters {undeclared} not declared in meta.parameters", file=path
        )
    try:
        expectation = ExpectationConfiguration(**copy.deepcopy(exp)).to_domain_obj()
    except Exception as exc:  # GX raises several unrelated types for a bad configuration
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{where}: {reason}", file=path) from None
    if meta["on_fail"] == "quarantine" and not isinstance(expectation, _row_level_types()):
        raise ConfigError(
            f"{where}: on_fail quarantine needs a row-level (map) expectation; "
            "a table-level one cannot say which rows to set aside",
            file=path,
            hint="use on_fail fail or warn",
        )


def _row_level_types() -> tuple[type, ...]:
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
