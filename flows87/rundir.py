"""The run directory: the one place that names the files a run reads and writes.

A run of the pipeline (one interval of the DAG, or one `flows87 run`) lives in one folder;
every stage, the case store, the evaluation and the benchmarks find its files through this
class, so a file is renamed here or nowhere. `RunDir` is path-like: `open(run)`, `Path(run)` and
functions taking `str | Path` accept it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PathLike = str | os.PathLike[str]
"""What a function taking a run directory accepts: a str, a Path or a RunDir."""

SIGNAL_STAGES = ("rules", "detectors", "graph")
"""The stages that write signals, each to its own file, merged by the signals gate."""

HELD_STAGES = ("rules", "graph")
"""The stages whose rules the flood ceiling can hold back (their held signals, merged)."""


@dataclass(frozen=True)
class RunDir:
    """A run's folder and the name of everything in it."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    # The input, after the raw gate.
    @property
    def transactions(self) -> Path:
        return self.path / "transactions.parquet"

    @property
    def accounts(self) -> Path:
        return self.path / "accounts.parquet"

    @property
    def parties(self) -> Path:
        """Party records (persons and entities) of a goAML input, one per mention."""
        return self.path / "parties.parquet"

    def side_table(self, name: str) -> Path:
        """A reader's table beyond the canonical two (`parties`, `goaml_reports`)."""
        return self.path / f"{name}.parquet"

    @property
    def staging(self) -> Path:
        """The read input before its gate (the read task hands it to the gate task)."""
        return self.path / "staging"

    # Features, partitions, signals.
    @property
    def features(self) -> Path:
        return self.path / "features.parquet"

    @property
    def partitions(self) -> Path:
        """account_id -> part, fixed once per run so every worker agrees."""
        return self.path / "partitions.parquet"

    def part(self, what: str, part: int) -> Path:
        """One partition's output of a partitioned stage."""
        return self.path / "parts" / f"{what}-{part:04d}.parquet"

    @property
    def parts(self) -> Path:
        return self.path / "parts"

    def stage_signals(self, stage: str) -> Path:
        """The signals of one detection stage (rules, detectors, graph), before the gate."""
        return self.path / f"signals_{stage}.parquet"

    def stage_held(self, stage: str) -> Path:
        """The signals of one stage's rules held back by the flood ceiling."""
        return self.path / f"signals_held_{stage}.parquet"

    @property
    def signals(self) -> Path:
        """Every stage's signals after the signals gate: what the cases are built from."""
        return self.path / "signals.parquet"

    @property
    def signals_held(self) -> Path:
        return self.path / "signals_held.parquet"

    @property
    def detector_model(self) -> Path:
        return self.path / "detectors_model.pkl"

    @property
    def anomaly_scores(self) -> Path:
        return self.path / "anomaly_scores.parquet"

    # Cases and what describes the run.
    @property
    def accounts_scored(self) -> Path:
        return self.path / "accounts_scored.parquet"

    @property
    def cases(self) -> Path:
        return self.path / "cases.parquet"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def run_json(self) -> Path:
        """Written when a run succeeds; describes the results in the folder."""
        return self.path / "run.json"

    @property
    def failed_json(self) -> Path:
        """Written when a run fails, leaving run.json (and the earlier results) as they were."""
        return self.path / "run.failed.json"

    def stage_record(self, stage: str) -> Path:
        return self.path / "stages" / f"{stage}.json"

    @property
    def stages(self) -> Path:
        return self.path / "stages"

    @property
    def quality(self) -> Path:
        """Each quality gate's result (<suite>.json) and report (<suite>.md)."""
        return self.path / "quality"

    def quarantine(self, suite: str) -> Path:
        """Rows a gate set aside, with the reason and the whole source record."""
        return self.path / "quarantine" / f"{suite}.parquet"

    @property
    def evaluation(self) -> Path:
        return self.path / "evaluation"
