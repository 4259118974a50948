"""A test DAG that succeeds only when the executor runs two tasks at the same time.

Each task marks that it started, then waits for the other's mark: run one after another, the
first times out. tests/test_multiworker.py runs it beside flows87_daily, so the parallel
executor is shown without depending on how a loaded machine happens to time short tasks.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

WAIT_SECONDS = 90


@task
def meet(me: str, other: str) -> None:
    folder = Path(get_current_context()["dag_run"].conf["folder"])
    (folder / me).touch()
    deadline = time.monotonic() + WAIT_SECONDS
    while not (folder / other).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"task {other} did not start while {me} ran: one task at a time")
        time.sleep(0.2)


@dag(dag_id="flows87_barrier", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def flows87_barrier() -> None:
    meet.override(task_id="a")("a", "b")
    meet.override(task_id="b")("b", "a")


flows87_barrier()
