"""flows87_backtest: evaluate each published run against its labels and investigators' decisions.

locate → evaluate → sweep (optional)

Scheduled on the `flows87_cases` asset, so it runs after every publish of flows87_daily and
evaluates that interval's run directory (FLOWS87_HOME/runs/<interval>/, the interval taken from
the asset event's extra). Triggered by hand, it evaluates the `run_dir` param, else the latest
finished run under FLOWS87_HOME/runs. The report goes to RUN/evaluation/ (evaluation.json for
machines, evaluation.html and evaluation.md with PNG plots): precision, recall, F1, PR-AUC,
recall at the `budgets`, per typology, rule and detector, rule overlap, alerts per day.

A run without labels is skipped unless the case store (FLOWS87_DB_URL or FLOWS87_HOME/cases.db)
has dispositions to evaluate against.

With the `sweep` param (default off), a rule and detector parameter sweep follows, as
`flows87 sweep RUN` (`sweep_method` random or grid, `sweep_settings`, `sweep_params`,
`sweep_max_alert_rate`, `seed`), into RUN/evaluation/sweep/: sweep.json and sweep.md (the
Pareto front of alert volume vs recall), pareto.png and chosen.patch (the best setting within
the alert budget as a diff of the rule files' defaults, when it is not the defaults). The sweep
task is skipped when the param is off or the run has no labels; it runs after the evaluation
whether that succeeded or was skipped, and not when it failed.

Each task is one call into flows87.research.backtest.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, TriggerRule, dag, get_current_context, task

from flows87.pipeline import tasks as o
from flows87.research import backtest as b


@dag(
    dag_id=b.DAG_ID,
    schedule=[Asset(name=o.ASSET_NAME, uri=o.ASSET_URI)],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params={name: Param(**spec) for name, spec in b.params_schema().items()},
    default_args={"retries": 0, "execution_timeout": timedelta(hours=2)},
    doc_md=__doc__,
    tags=["flows87", "aml", "evaluation"],
)
def flows87_backtest() -> None:
    @task
    def locate() -> dict:
        return b.locate(get_current_context())

    @task
    def evaluate(found: dict) -> dict:
        return b.evaluate_task(get_current_context(), found["run_dir"])

    @task(trigger_rule=TriggerRule.NONE_FAILED)
    def sweep(found: dict) -> dict:
        return b.sweep_task(get_current_context(), found["run_dir"])

    found = locate()
    evaluate(found) >> sweep(found)


flows87_backtest()
