"""One run of the plan: its directory, settings, input, and what its steps hand each other.

The DAG's tasks and `flows87 run` build the same Job and call the same step functions with
it. Between Airflow tasks (separate processes, maybe separate machines) a step's output for the
next one is a file of the run directory; in one process it stays in memory (`memo`), under the
same name, so running in-process costs no extra write and read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flows87.rundir import RunDir

if TYPE_CHECKING:
    from flows87.pipeline.schedule import Interval
    from flows87.pipeline.stages.config import RunConfig

T = TypeVar("T")


def _quiet(_: str) -> None:
    pass


@dataclass
class Job:
    run: RunDir
    config: RunConfig
    source: str | None = None
    """What the read step reads (a file, a folder; "demo" in a scheduled run)."""
    partitions: int = 1
    command: str = "run"
    """Who ran it, recorded in run.json: "run" or the DAG's id."""
    interval: Interval | None = None
    """A scheduled run's data interval (the publish step files the cases under it)."""
    progress: Callable[[str], None] = _quiet
    memo: dict[str, Any] | None = None
    """In-process runs only: outputs handed from step to step without a file."""

    @classmethod
    def local(cls, run_dir: str | Path | RunDir, config: RunConfig | None = None, **kw: Any) -> Job:
        """A job run in this process (`flows87 run`, tests, benchmarks)."""
        from flows87.pipeline.stages.config import RunConfig

        return cls(RunDir(run_dir), config or RunConfig(), memo={}, **kw)

    def params(self) -> dict[str, Any]:
        """What run.json records as the run's parameters."""
        out: dict[str, Any] = {**self.config.as_params(), "source": self.source}
        out["partitions"] = self.partitions
        if self.interval is not None:
            out["interval"] = self.interval.key
        return out

    def hand_over(self, path: Path, value: T, write: Callable[[T, Path], Any]) -> None:
        """Give a later step `value`: kept in memory in-process, written to `path` otherwise."""
        if self.memo is not None:
            self.memo[str(path)] = value
        else:
            write(value, path)

    def take(self, path: Path, read: Callable[[Path], T]) -> T:
        """What an earlier step handed over under `path` (read from the file between tasks)."""
        if self.memo is not None and str(path) in self.memo:
            return self.memo.pop(str(path))
        return read(path)
