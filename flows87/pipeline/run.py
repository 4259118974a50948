"""The whole pipeline on one input, without Airflow: the same stage functions the DAG's tasks call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows87.errors import Flows87Error
from flows87.pipeline import stages
from flows87.pipeline.runinfo import assemble
from flows87.pipeline.stages.config import RunConfig

Progress = Callable[[str, float | None], None]


def _noop(step: str, fraction: float | None = None) -> None:
    pass


def run(
    source: str | Path,
    run_dir: str | Path,
    config: RunConfig | None = None,
    progress: Progress = _noop,
) -> dict[str, Any]:
    """ingest → gate → features → gate → rules, detectors, graph → gate → cases → gate → report."""
    config = config or RunConfig()
    run_dir = Path(run_dir)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("ingest", lambda: stages.ingest(source, run_dir, config, lambda s: progress(s, None))),
        ("features", lambda: stages.features(run_dir, config)),
        ("rules", lambda: stages.rules(run_dir, config)),
        ("detectors", lambda: stages.anomalies(run_dir, config)),
        ("graph", lambda: stages.graph(run_dir, config)),
        ("signals", lambda: stages.gate_signals(run_dir, config)),
        ("cases", lambda: stages.cases(run_dir, config)),
    ]
    summary: dict[str, Any] = {}
    try:
        for i, (name, fn) in enumerate(steps):
            progress(name, i / (len(steps) + 1))
            summary[name] = fn()
        progress("report", len(steps) / (len(steps) + 1))
        summary["report"] = stages.report(run_dir, config, command="run")
    except Flows87Error as exc:
        assemble(run_dir, "run", config.as_params(), status="failed", error=exc.message)
        raise
    return summary
