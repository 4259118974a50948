"""flows87_daily: every day, score the last `lookback_days` of transactions and publish the cases.

read → gate_raw → partition → features (per partition) → gate_features
  → rules (per partition) → merge_rules → graph ──────────────────┐
  → fit_detectors → detectors (per partition) → combine_detectors ┴→ gate_signals
  → cases → report → publish

Each task is one call into flows87.pipeline.tasks; tasks exchange files under
FLOWS87_HOME/runs/<data interval>/ and XCom carries only small summaries. A failed quality gate
fails its task (its report is in the task log) and nothing downstream runs, so the published
cases of earlier runs stay as they were. Publishing updates the `flows87_cases` asset.

Settings read when the file is parsed: FLOWS87_SCHEDULE (default @daily; "none" for manual
runs), FLOWS87_START_DATE (default 2026-01-01), FLOWS87_CATCHUP (default false), FLOWS87_HOME.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, get_current_context, task

from flows87.pipeline import tasks as o

IO_RETRIES = {"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True}


@dag(
    dag_id=o.DAG_ID,
    schedule=o.schedule_setting(),
    start_date=o.start_date_setting(),
    catchup=o.catchup_setting(),
    max_active_runs=1,
    params={name: Param(**spec) for name, spec in o.params_schema().items()},
    default_args={"retries": 0, "execution_timeout": timedelta(hours=6)},
    doc_md=__doc__,
    tags=["flows87", "aml", "sdg-8.7"],
)
def flows87_daily() -> None:
    @task(**IO_RETRIES)
    def read() -> dict:
        return o.read(get_current_context())

    @task
    def gate_raw() -> dict:
        return o.gate_raw(get_current_context())

    @task
    def partition() -> list[int]:
        return o.plan(get_current_context())

    @task(map_index_template="part {{ task.op_kwargs['part'] }}")
    def features(part: int) -> dict:
        return o.features_part(get_current_context(), part)

    @task
    def gate_features() -> dict:
        return o.gate_features(get_current_context())

    @task(map_index_template="part {{ task.op_kwargs['part'] }}")
    def rules(part: int) -> dict:
        return o.rules_part(get_current_context(), part)

    @task
    def merge_rules() -> dict:
        return o.merge_rules(get_current_context())

    @task
    def fit_detectors() -> dict:
        return o.fit_detectors(get_current_context())

    @task(map_index_template="part {{ task.op_kwargs['part'] }}")
    def detectors(part: int) -> dict:
        return o.detectors_part(get_current_context(), part)

    @task
    def combine_detectors() -> dict:
        return o.combine_detectors(get_current_context())

    @task
    def graph() -> dict:
        return o.graph(get_current_context())

    @task
    def gate_signals() -> dict:
        return o.gate_signals(get_current_context())

    @task
    def cases() -> dict:
        return o.cases(get_current_context())

    @task
    def report() -> dict:
        return o.report(get_current_context())

    @task(outlets=[Asset(name=o.ASSET_NAME, uri=o.ASSET_URI)], **IO_RETRIES)
    def publish() -> dict:
        return o.publish(get_current_context())

    parts = partition()
    gate_raw_done = gate_raw()
    read() >> gate_raw_done >> parts
    feats = features.expand(part=parts)
    gated = gate_features()
    feats >> gated
    rule_parts = rules.expand(part=parts)
    gated >> rule_parts
    merged = merge_rules()
    rule_parts >> merged
    signals = gate_signals()
    merged >> graph() >> signals
    detector_parts = detectors.expand(part=parts)
    gated >> fit_detectors() >> detector_parts >> combine_detectors() >> signals
    signals >> cases() >> report() >> publish()


flows87_daily()
