"""What the backtest DAG's tasks call (dags/flows87_backtest.py stays wiring only).

It evaluates a run (`flows87.research.evaluate`) and then may sweep it (`flows87.research.sweep`,
which measures with the evaluation's metrics), so it sits above both: neither imports it.

Which run to evaluate, in order:
  1. the `run_dir` param, when given (a manual trigger);
  2. the interval of the latest triggering `flows87_cases` asset event (the daily DAG's publish
     task puts "interval" in the event's extra): FLOWS87_HOME/runs/<interval>/, or the published
     copy FLOWS87_HOME/published/intervals/<interval>/ when the run directory is gone;
  3. the latest finished run under FLOWS87_HOME/runs/ (by interval key, which sorts by date).
The evaluation goes to RUN/evaluation/ (evaluation.json, .md, .html and the plots).

With the `sweep` param, a rule and detector parameter sweep follows (`flows87.research.sweep.sweep`, as
`flows87 sweep RUN`) into RUN/evaluation/sweep/: sweep.json, sweep.md, pareto.png and, when a
setting other than the defaults is best within the alert budget, chosen.patch. It is skipped
(not failed) when the param is off or the run has no labels to measure recall against.

This module is imported by task code only; it imports nothing heavy at module level.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flows87.errors import Flows87Error, InputError
from flows87.pipeline import schedule
from flows87.rundir import RunDir

log = logging.getLogger("flows87")

DAG_ID = "flows87_backtest"
SWEEP_DIR = RunDir(".").evaluation / "sweep"
"""Where the optional sweep writes, relative to the run directory."""


def params_schema() -> dict[str, dict[str, Any]]:
    """The backtest DAG's params: default, type and description of each (Param(**spec))."""
    return {
        "run_dir": {
            "default": "",
            "type": "string",
            "description": (
                "Run directory to evaluate; empty: the interval of the triggering asset event, "
                "else the latest run under FLOWS87_HOME/runs."
            ),
        },
        "budgets": {
            "default": [0.005, 0.01, 0.02],
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "description": "Alert budgets as shares of accounts ranked by risk score.",
        },
        "sweep": {
            "default": False,
            "type": "boolean",
            "description": (
                "After the evaluation, sweep rule and detector parameters on the run (as "
                "`flows87 sweep RUN`) into RUN/evaluation/sweep/; needs labels."
            ),
        },
        "sweep_method": {
            "default": "random",
            "type": "string",
            "enum": ["random", "grid"],
            "description": "random: seeded draws within the rule files' ranges; grid: a grid.",
        },
        "sweep_settings": {
            "default": 20,
            "type": "integer",
            "minimum": 1,
            "description": (
                "random: the number of draws; grid: the largest full grid (a larger one is "
                "swept one parameter at a time)."
            ),
        },
        "sweep_params": {
            "default": [],
            "type": "array",
            "items": {"type": "string"},
            "description": (
                "Parameters to sweep (rule_id.param, rule_id, detectors.contamination, ...); "
                "empty: every rule parameter and detectors.contamination."
            ),
        },
        "sweep_max_alert_rate": {
            "default": 0.02,
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1,
            "description": (
                "Alert budget of the sweep: chosen.patch holds the best recall with at most "
                "this share of accounts in cases."
            ),
        },
        "seed": {
            "default": 0,
            "type": "integer",
            "minimum": 0,
            "description": "Seed of the random sweep.",
        },
    }


def _event_items(events: Any) -> list[tuple[Any, dict[str, Any]]]:
    """(timestamp, extra) of every triggering asset event, whatever mapping Airflow gives."""
    if not events:
        return []
    items = []
    for key in list(events):
        for event in events[key] or []:
            extra = event.get("extra") if isinstance(event, dict) else getattr(event, "extra", None)
            stamp = (
                event.get("timestamp")
                if isinstance(event, dict)
                else getattr(event, "timestamp", None)
            )
            if isinstance(extra, dict):
                items.append((stamp, extra))
    return items


def _finished(run_dir: Path) -> bool:
    """Whether a run got as far as scoring its accounts (what the evaluation reads)."""
    return RunDir(run_dir).accounts_scored.exists()


def latest_run(root: Path | None = None) -> Path | None:
    """The latest finished run directory under FLOWS87_HOME/runs (or `root`), or None."""
    runs = (root or schedule.home()) / "runs"
    if not runs.is_dir():
        return None
    done = sorted(p for p in runs.iterdir() if _finished(p))
    return done[-1] if done else None


def resolve_run_dir(context: dict[str, Any]) -> Path:
    """The run directory this backtest evaluates (see the module docstring); InputError when
    there is none."""
    params = context.get("params") or {}
    given = str(params.get("run_dir") or "").strip()
    if given:
        path = Path(given).expanduser()
        if not _finished(path):
            raise InputError(
                f"not a finished run directory (no {RunDir(path).accounts_scored.name})",
                file=path,
                field="run_dir",
            )
        return path
    items = [
        i for i in _event_items(context.get("triggering_asset_events")) if i[1].get("interval")
    ]
    if items:
        # the latest event: timestamps when every event has one, else the last in order
        if all(stamp is not None for stamp, _ in items):
            items.sort(key=lambda i: i[0])
        interval = str(items[-1][1]["interval"])
        for candidate in (
            schedule.home() / "runs" / interval,
            schedule.published_dir() / "intervals" / interval,
        ):
            if _finished(candidate):
                return candidate
        raise InputError(
            f"the published interval {interval} has no finished run directory",
            file=schedule.home() / "runs" / interval,
            hint="FLOWS87_HOME must be the same shared path for the daily and the backtest DAG",
        )
    latest = latest_run()
    if latest is None:
        raise InputError(
            "no run to evaluate: no run_dir param, no triggering asset event and no finished run",
            file=schedule.home() / "runs",
        )
    return latest


def locate(context: dict[str, Any]) -> dict[str, Any]:
    """Task: which run to evaluate (fails the task at once when there is none)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        run_dir = resolve_run_dir(context)
    except Flows87Error as exc:
        raise AirflowFailException(exc.message) from None
    log.info("backtest of %s", run_dir)
    return {"run_dir": str(run_dir)}


def evaluate_task(context: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Task: evaluate the run into RUN/evaluation/; skipped (not failed) when the run has no
    labels and the case store no dispositions, as on production data before any review."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from flows87.research.evaluate.evaluation import evaluate, headline, parse_budgets

    params = context.get("params") or {}
    try:
        budgets = parse_budgets(params.get("budgets"))
        result = evaluate(run_dir, RunDir(run_dir).evaluation, budgets)
    except InputError as exc:
        if "has no labels" in exc.reason:
            raise AirflowSkipException(exc.message) from None
        raise AirflowFailException(exc.message) from None
    except Flows87Error as exc:
        raise AirflowFailException(exc.message) from None
    head = headline(result)
    log.info("evaluation of %s: %s", run_dir, head)
    return head


def has_labels(run_dir: str | Path) -> bool:
    """Whether the run's accounts_scored.parquet carries the is_suspicious labels."""
    import polars as pl

    return "is_suspicious" in pl.read_parquet_schema(RunDir(run_dir).accounts_scored)


def sweep_task(context: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Task: the optional parameter sweep into RUN/evaluation/sweep/; skipped when the `sweep`
    param is off or the run has no labels (a sweep measures recall against them)."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    params = context.get("params") or {}
    if not params.get("sweep"):
        raise AirflowSkipException("sweep is off (set the `sweep` param to true to run one)")
    run = Path(run_dir)
    if not has_labels(run):
        raise AirflowSkipException(
            f"sweep skipped: {RunDir(run).accounts_scored} has no labels (is_suspicious), and a sweep "
            "measures recall against them"
        )
    from flows87.research.sweep import sweep

    method = str(params.get("sweep_method") or "random")
    n = int(params.get("sweep_settings") or 20)
    out = run / SWEEP_DIR
    step = max(1, n // 10)

    def progress(i: int, total: int) -> None:
        if i == total or i % step == 0:
            log.info("sweep: setting %d/%d", i, total)

    try:
        result = sweep(
            run,
            out=out,
            params=[str(p) for p in params.get("sweep_params") or []] or None,
            random_n=n if method == "random" else None,
            grid_levels=3,
            max_settings=n,
            seed=int(params.get("seed") or 0),
            max_alert_rate=float(params.get("sweep_max_alert_rate") or 0.02),
            progress=progress,
        )
    except InputError as exc:
        if "has no labels" in exc.reason:
            raise AirflowSkipException(f"sweep skipped: {exc.message}") from None
        raise AirflowFailException(exc.message) from None
    except Flows87Error as exc:
        raise AirflowFailException(exc.message) from None
    doc = result.doc
    base = doc["settings"][0]["metrics"]
    chosen = doc["settings"][doc["chosen"]] if doc["chosen"] is not None else None
    summary = {
        "out": str(out),
        "mode": doc["mode"],
        "settings": len(doc["settings"]),
        "pareto": doc["pareto"],
        "defaults": {"recall": base["recall"], "alert_rate": base["alert_rate"]},
        "chosen": None
        if chosen is None
        else {
            "index": doc["chosen"],
            "setting": chosen["setting"],
            "recall": chosen["metrics"]["recall"],
            "alert_rate": chosen["metrics"]["alert_rate"],
        },
        "patch": doc["patch"],
    }
    if chosen is None:
        log.info(
            "sweep of %s: no setting keeps the alert rate within %.2f%%; no patch",
            run,
            100 * doc["max_alert_rate"],
        )
    elif not chosen["setting"]:
        log.info("sweep of %s: the defaults are the best within the alert budget; no patch", run)
    else:
        log.info("sweep of %s: chose %s; review %s", run, chosen["setting"], doc["patch"])
    log.info("sweep report: %s", result.paths.get("markdown"))
    return summary
