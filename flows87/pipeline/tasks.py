"""What the Airflow tasks call: Airflow's context in, one step of the plan, a small summary out.

The DAG files stay wiring only; this module turns a task's params and data interval into the
Job of that interval (run directory, RunConfig, input), calls the step, and turns flows87's errors into
task failures an operator can act on: bad data or configuration fails the task at once (no
retry can fix it) with the message naming file, row, column and the gate's report, whose text
is copied into the task log; anything else (a full disk, a lost worker) is left to the task's
retries. XCom carries only the returned summaries and paths.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows87.errors import ConfigError, Flows87Error, QualityGateError
from flows87.pipeline import schedule

if TYPE_CHECKING:
    from flows87.pipeline.job import Job

# The DAG processor imports this module every few seconds: everything heavy (polars, the
# engine, great-expectations) is imported inside the task functions, not here.

log = logging.getLogger("flows87")

DAG_ID = "flows87_daily"
ASSET_NAME = "flows87_cases"
DEFAULT_SCHEDULE = "@daily"
DEFAULT_START = "2026-01-01"
MAX_REPORT_LINES = 80


def schedule_setting() -> str | None:
    """FLOWS87_SCHEDULE: a cron expression or preset; "none" for triggered runs only."""
    value = os.environ.get("FLOWS87_SCHEDULE", DEFAULT_SCHEDULE).strip()
    return None if value.lower() in ("", "none", "manual") else value


def start_date_setting() -> datetime:
    value = os.environ.get("FLOWS87_START_DATE", DEFAULT_START)
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(
            f"FLOWS87_START_DATE {value!r} is not an ISO date", hint="e.g. 2026-01-01"
        ) from None


def catchup_setting() -> bool:
    """FLOWS87_CATCHUP=true makes the scheduler run every interval since the start date."""
    return os.environ.get("FLOWS87_CATCHUP", "false").strip().lower() in ("1", "true", "yes")


ASSET_URI = "flows87://published/cases"
"""A logical URI, the same wherever FLOWS87_HOME points (a worker and the scheduler, tests and
production all name one asset); each event's extra says which file was published."""


def params_schema() -> dict[str, dict[str, Any]]:
    """The DAG's params: default, type and description of each (Param(**spec) in the DAG)."""
    from flows87.pipeline.ingest import FORMATS

    return {
        "source": {
            "default": schedule.DEMO_SOURCE,
            "type": "string",
            "description": (
                "Input file or folder in any supported format; may contain {ds}, {ds_nodash}, "
                "{start}, {end}, {window_start}. 'demo' generates labelled demo data."
            ),
        },
        "format": {
            "default": None,
            "type": ["null", "string"],
            "enum": [None, *FORMATS],
            "description": "Input format; detected from the header when empty.",
        },
        "rules_dir": {
            "default": "",
            "type": "string",
            "description": "Folder of rule files; empty for the bundled rules/.",
        },
        "windows": {
            "default": [],
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9]+[dh]$"},
            "description": "Feature windows (e.g. 7d, 30d); empty for rules/settings/features.yaml.",
        },
        "lookback_days": {
            "default": 30,
            "type": "integer",
            "minimum": 1,
            "maximum": 366,
            "description": "Days of history each run analyses, ending at the interval's end.",
        },
        "alert_budget": {
            "default": 0.01,
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": "Share of accounts investigators can review (report metrics).",
        },
        "max_failed_fraction": {
            "default": 0.01,
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "A quality gate stops the run above this share of failing rows.",
        },
        "partitions": {
            "default": 1,
            "type": "integer",
            "minimum": 1,
            "maximum": 256,
            "description": "Account-hash partitions the feature, rule and detector tasks fan out over.",
        },
    }


def job(context: dict[str, Any]) -> Job:
    """The Job of a task's DAG run: its interval's run directory and settings."""
    from pydantic import ValidationError

    from flows87.pipeline.job import Job
    from flows87.pipeline.stages.config import RunConfig
    from flows87.rundir import RunDir

    params = dict(context.get("params") or {})
    interval = _interval(context, int(params.get("lookback_days") or 30))
    try:
        config = RunConfig(
            format=params.get("format") or None,
            rules_dir=Path(params["rules_dir"])
            if params.get("rules_dir")
            else RunConfig().rules_dir,
            windows=list(params["windows"]) if params.get("windows") else None,
            interval_start=interval.window_start,
            interval_end=interval.end,
            select_interval=True,
            alert_budget=float(params.get("alert_budget", 0.01)),
            max_failed_fraction=float(params.get("max_failed_fraction", 0.01)),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(first["msg"], field=".".join(map(str, first["loc"]))) from None
    return Job(
        RunDir(interval.run_dir()),
        config,
        source=str(schedule.resolve_source(str(params.get("source", "")), interval)),
        partitions=int(params.get("partitions") or 1),
        command=DAG_ID,
        interval=interval,
    )


def _interval(context: dict[str, Any], lookback_days: int) -> schedule.Interval:
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None or end <= start:
        # a manual run of an unscheduled DAG has no interval: judge the day before its date
        end = schedule.utc(
            context.get("logical_date") or context.get("run_after") or datetime.now(UTC)
        )
        end = end.replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=1)
    return schedule.Interval.of(start, end, lookback_days)


def _log_report(exc: QualityGateError) -> None:
    if exc.report is None or not exc.report.exists():
        return
    lines = exc.report.read_text(encoding="utf-8").splitlines()
    shown = "\n".join(lines[:MAX_REPORT_LINES])
    more = (
        f"\n... ({len(lines) - MAX_REPORT_LINES} more lines in {exc.report})"
        if len(lines) > MAX_REPORT_LINES
        else ""
    )
    log.error("quality gate report %s:\n%s%s", exc.report, shown, more)


def call(context: dict[str, Any], name: str, part: int | str | None = None) -> Any:
    """Run one step of the plan for the task; user errors fail the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from flows87.pipeline.plan import step
    from flows87.pipeline.runinfo import assemble
    from flows87.pipeline.stages.common import heap_set_aside, no_hugepage_stalls

    no_hugepage_stalls()

    label = name if part is None else f"{name}[{part}]"
    try:
        current = job(context)
    except Flows87Error as exc:  # bad params: no retry can fix them
        raise AirflowFailException(f"flows87 {label}: {exc.message}") from exc
    log.info("flows87 %s: interval %s, run directory %s", label, current.interval, current.run)
    fn = step(name).function()
    try:
        with heap_set_aside():
            result = fn(current) if part is None else fn(current, part)
    except Flows87Error as exc:
        if isinstance(exc, QualityGateError):
            _log_report(exc)
        assemble(current.run, DAG_ID, current.params(), status="failed", error=exc.message)
        raise AirflowFailException(f"flows87 {label}: {exc.message}") from exc
    log.info("flows87 %s done: %s", label, result)
    if name == "publish":
        _asset_event(context, result)
    return _small(result)


def _asset_event(context: dict[str, Any], result: dict[str, Any]) -> None:
    """Say which interval and file the published asset's event is about."""
    events = context.get("outlet_events")
    task = context.get("task")
    if events is None or task is None:
        return
    for asset in task.outlets:  # the asset as declared, so its event is recorded
        events[asset].extra = {
            "interval": result["interval"],
            "cases": result["cases"],
            "path": result["published"],
        }


def _small(summary: Any) -> Any:
    """XCom gets counts, not lists of every warning, nor the report's metrics."""
    if not isinstance(summary, dict):
        return summary
    out = dict(summary)
    if isinstance(out.get("warnings"), list):
        out["warnings"] = len(out["warnings"])
    metrics = out.pop("metrics", None)
    if isinstance(metrics, dict):
        accounts = metrics.get("accounts") or {}
        out["recall"], out["precision"] = accounts.get("recall"), accounts.get("precision")
    return out
