"""flows87_daily: every day, score the last `lookback_days` of transactions and publish the cases.

list_inputs → read_file (per input file) → gate_accounts → gate_file (per input file) → gate_raw
  → resolve → partition
  → features (per partition) → gate_features → rules (per partition) → merge_rules
                                 → graph_prime → graph_part (per partition) → merge_graph ─┐
  → fit_detectors → detectors (per partition) → combine_detectors ─────────────────────────┴→
  gate_signals → group_cases → score_accounts (per partition) → merge_cases → learn → report
  → publish

The tasks are the steps of flows87.pipeline.plan.dag_plan: the plan `flows87 run` runs in one
process, with its read and raw gate as a task per input file (a canonical input's transaction
files; any other input is one), the accounts gate, a task per file running the transactions
gate's checks on its rows and `gate_raw` merging them into the gate on the files' union; its
graph step as the tables every partition derives from the whole graph, a task per partition
(the patterns' instances anchored at its accounts, the links through them) and a merge; and its
cases step as the grouping, a ranking task per partition and a merge. Each task is one call of
flows87.pipeline.tasks.call; tasks exchange files under FLOWS87_HOME/runs/<data interval>/ and
XCom carries only small summaries. A failed quality gate fails its task (its report is in the
task log) and nothing downstream runs, so the published cases of earlier runs stay as they
were. Publishing updates the `flows87_cases` asset.

Settings read when the file is parsed: FLOWS87_SCHEDULE (default @daily; "none" for manual
runs), FLOWS87_START_DATE (default 2026-01-01), FLOWS87_CATCHUP (default false), FLOWS87_HOME.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, dag, get_current_context, task

from flows87.pipeline import tasks
from flows87.pipeline.plan import Step, dag_plan

IO_RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True}


def _task(step: Step) -> Any:
    options: dict[str, Any] = {"task_id": step.name, **(IO_RETRIES if step.io else {})}
    if step.name == "publish":
        options["outlets"] = [Asset(name=tasks.ASSET_NAME, uri=tasks.ASSET_URI)]
    if step.per_part:
        options["map_index_template"] = "part {{ task.op_kwargs['part'] }}"

        def one_part(part: int, _name: str = step.name) -> Any:
            return tasks.call(get_current_context(), _name, part)

        return task(**options)(one_part)
    if step.per_input:
        options["map_index_template"] = "piece {{ task.op_kwargs['piece'] }}"

        def one_piece(piece: int, _name: str = step.name) -> Any:
            return tasks.call(get_current_context(), _name, piece)

        return task(**options)(one_piece)

    def whole(_name: str = step.name) -> Any:
        return tasks.call(get_current_context(), _name)

    return task(**options)(whole)


@dag(
    dag_id=tasks.DAG_ID,
    schedule=tasks.schedule_setting(),
    start_date=tasks.start_date_setting(),
    catchup=tasks.catchup_setting(),
    max_active_runs=1,
    params={name: Param(**spec) for name, spec in tasks.params_schema().items()},
    default_args={"retries": 0, "execution_timeout": timedelta(hours=6)},
    doc_md=__doc__,
    tags=["flows87", "aml", "sdg-8.7"],
)
def flows87_daily() -> None:
    made: dict[str, Any] = {}
    partitions = None
    for step in dag_plan():
        fn = _task(step)
        if step.per_part:
            made[step.name] = fn.expand(part=partitions)
        elif step.per_input:
            made[step.name] = fn.expand(piece=made["list_inputs"])  # its list of pieces
        else:
            made[step.name] = fn()
        if step.name == "partition":
            partitions = made[step.name]  # its list of partitions is what the others map over
        for upstream in step.after:
            made[upstream] >> made[step.name]


flows87_daily()
