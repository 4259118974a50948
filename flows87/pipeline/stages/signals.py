"""The signals gate: the rules', detectors' and graph patterns' signals merged, checked, published.

RUN/signals.parquet is what cases are built from; RUN/signals_held.parquet keeps the signals of
rules the flood ceiling held back, which the gate reports but does not pass on.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from flows87.io import read_json, write_parquet
from flows87.pipeline import quality
from flows87.pipeline.job import Job
from flows87.pipeline.rules import empty_signals
from flows87.pipeline.rules.ceiling import summary_lines
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages.common import free_memory
from flows87.rundir import HELD_STAGES, SIGNAL_STAGES, RunDir


def gate_signals(job: Job) -> dict[str, Any]:
    run = job.run
    free_memory()
    with stage(run, "signals") as rec:
        found = [run.stage_signals(s) for s in SIGNAL_STAGES if run.stage_signals(s).exists()]
        merged = _total_order(pl.concat([empty_signals(), *map(pl.read_parquet, found)]))
        held_files = [run.stage_held(s) for s in HELD_STAGES if run.stage_held(s).exists()]
        held = _total_order(pl.concat([empty_signals(), *map(pl.read_parquet, held_files)]))
        held_back = held_back_records(run)
        gate = quality.run_gate(
            merged, "signals", run, max_failed_fraction=job.config.max_failed_fraction
        )
        write_parquet(gate.passed, run.signals)
        write_parquet(held, run.signals_held)
        by_source = gate.passed.group_by("source").len().sort("source")
        rec.counts = {
            "signals": gate.passed.height,
            "by_source": {s: int(n) for s, n in by_source.iter_rows()},
            "quarantined": gate.stats["rows_quarantined"],
            "held_back_signals": held.height,
            "held_back_rules": [r["rule"] for r in held_back],
        }
        rec.extra["held_back"] = held_back
        rec.warnings = list(gate.stats["warnings"]) + summary_lines(held_back)
    return rec.counts


def _total_order(signals: pl.DataFrame) -> pl.DataFrame:
    """A total order (an account may have several signals of one rule: one per window or
    pattern instance), so the file is the same whatever order the parts came in."""
    return signals.sort(
        "source", "signal_id", "account_id", "window_start", "evidence", maintain_order=True
    )


def held_back_records(run: RunDir) -> list[dict[str, Any]]:
    """The flood ceiling's records of the rules and graph stages (RUN/stages/*.json)."""
    records: list[dict[str, Any]] = []
    for name in HELD_STAGES:
        path = run.stage_record(name)
        if path.exists():
            records += read_json(path).get("held_back", [])
    return sorted(records, key=lambda r: r["rule"])
