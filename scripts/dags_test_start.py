"""Give `airflow dags test` runs their real start time in Airflow's metadata DB.

`airflow dags test DAG DATE` (and `dag.test()`) records the run's start as its logical date
(apache/airflow#66127, still so in Airflow 3.3), so the demo's replay of a day's midnight run shows
in the UI as lasting since midnight, which flattens every real run in the grid. This sets the start
of each such run (triggered by a test, start equal to its logical date) to when its first task
started; its end is already real. Runs by the scheduler are never touched.

    python scripts/dags_test_start.py DAG_ID        (scripts/demo.sh runs it after the test)
"""

from __future__ import annotations

import sys
from datetime import datetime

from sqlalchemy import func, select


def fix_test_runs(dag_id: str) -> list[tuple[str, datetime, datetime]]:
    """(run_id, recorded start, real start) of each run corrected."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    fixed = []
    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(
                DagRun.dag_id == dag_id,
                DagRun.triggered_by == DagRunTriggeredByType.TEST,
                DagRun.start_date == DagRun.logical_date,
            )
        ).all()
        for run in runs:
            # a retried task's earlier tries are in the history table
            starts = [
                session.scalar(
                    select(func.min(table.start_date)).where(
                        table.dag_id == dag_id, table.run_id == run.run_id
                    )
                )
                for table in (TaskInstance, TaskInstanceHistory)
            ]
            first = min((s for s in starts if s is not None), default=None)
            if first is not None and run.start_date is not None and first > run.start_date:
                fixed.append((run.run_id, run.start_date, first))
                run.start_date = first
    return fixed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for run_id, recorded, real in fix_test_runs(argv[0]):
        print(f"{argv[0]} {run_id}: start {recorded.isoformat()} -> {real.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
