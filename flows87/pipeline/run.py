"""The plan in one process, without Airflow: `flows87 run`, `flows87 ingest`, tests, benchmarks.

It calls the steps of flows87.pipeline.plan in their order, with one partition or several one
after another (`plan.local_plan`), the way the DAG's tasks call them; what one step hands the
next stays in memory instead of going through a file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows87.errors import Flows87Error
from flows87.pipeline.job import Job
from flows87.pipeline.plan import Step, local_plan, upto
from flows87.pipeline.runinfo import assemble
from flows87.pipeline.stages.config import RunConfig

Progress = Callable[[str, float | None], None]


def _noop(step: str, fraction: float | None = None) -> None:
    pass


def run_steps(job: Job, steps: Sequence[Step], progress: Progress = _noop) -> dict[str, Any]:
    """Run `steps` in order; returns each stage's summary (that of its last step).

    A failing step writes run.failed.json and re-raises: run.json and the results of an earlier
    successful run stay as they were."""
    from flows87.pipeline.stages.common import heap_set_aside, no_hugepage_stalls

    no_hugepage_stalls()
    summary: dict[str, Any] = {}
    try:
        with heap_set_aside():
            for i, step in enumerate(steps):
                progress(step.name, i / len(steps))
                fn = step.function()
                if step.per_part:
                    summary[step.stage] = [fn(job, part) for part in range(job.partitions)]
                else:
                    summary[step.stage] = fn(job)
    except Flows87Error as exc:
        assemble(job.run, job.command, job.params(), status="failed", error=exc.message)
        raise
    finally:
        if job.memo is not None:
            job.memo.clear()
    return summary


def run(
    source: str | Path,
    run_dir: str | Path,
    config: RunConfig | None = None,
    progress: Progress = _noop,
    partitions: int = 1,
) -> dict[str, Any]:
    """read → gate_raw → features → gate → rules, detectors, graph → gate → cases → report;
    in `partitions` partitions one after another (`plan.local_plan`): the same results."""
    job = Job.local(run_dir, config, source=str(source), partitions=partitions)
    job.progress = lambda message: progress(message, None)
    steps = [s for s in local_plan(partitions) if not s.scheduled_only]
    return run_steps(job, steps, progress)


def ingest(
    source: str | Path,
    run_dir: str | Path,
    config: RunConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Read and gate the input only (`flows87 ingest`): the summary of the raw gate."""
    job = Job.local(run_dir, config, source=str(source), command="ingest")
    if progress is not None:
        job.progress = progress
    summary = run_steps(job, upto("gate_raw"))
    assemble(job.run, job.command, job.params())
    return summary["ingest"]
