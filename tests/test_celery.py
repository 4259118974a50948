"""The daily DAG on Airflow's CeleryExecutor with two workers: what README "Scaling out" runs.

tests/test_multiworker.py proves the LocalExecutor; here the same deployment
(tests/airflow_cluster.py) runs the CeleryExecutor: the scheduler queues each task on Redis and
two `airflow celery worker` processes (concurrency 1 each, named w1@ and w2@) take them, with
the metadata, Celery's results and the case store in PostgreSQL. flows87_daily runs with 4
partitions, triggered through the REST API: every task must have run on a Celery worker (its
task instance's hostname), the mapped parts on both, and the published cases must be byte for
byte those of the single-process run, and be in the case store. Nothing of the deployment, Redis included, may listen beyond loopback.

Runs only with FLOWS87_CELERY=1 (it needs the `celery` extra and Debian's redis-server, and CI's
time is near its budget); then a missing provider or Redis fails it rather than skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy
from airflow_cluster import AirflowCluster
from polars.testing import assert_frame_equal
from test_multiworker import DAG_ID, DAYS, LOGICAL, MAPPED, PARTITIONS, digest, small_input

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("FLOWS87_CELERY") != "1", reason="set FLOWS87_CELERY=1 to run it"
    ),
]
WORKERS = 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_input(tmp_path_factory.mktemp("celery-data"))


@pytest.fixture(scope="module")
def cluster(
    postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowCluster]:
    import airflow.providers.celery

    assert shutil.which("redis-server"), "redis-server missing: bash scripts/system-deps.sh"
    database, store = postgres_server.new_database(), postgres_server.new_database()
    workdir = tmp_path_factory.mktemp("celery-cluster")
    env = {
        "FLOWS87_HOME": str(workdir / "flows87"),  # the files the tasks exchange
        "FLOWS87_SCHEDULE": "none",
        # the case store: a distributed deployment refuses a SQLite file
        "FLOWS87_DB_URL": postgres_server.url(store),
        "FLOWS87_AUDIT_KEY": secrets.token_hex(32),  # a PostgreSQL store's audit log needs it
    }
    try:
        with AirflowCluster(
            workdir, postgres_server.url(database), env=env, executor="celery", workers=WORKERS
        ) as airflow:
            yield airflow
    finally:
        postgres_server.drop_database(database)
        postgres_server.drop_database(store)


def test_daily_dag_on_two_celery_workers_publishes_what_one_process_does(
    cluster: AirflowCluster, data_dir: Path, tmp_path: Path
) -> None:
    from flows87.pipeline.run import run
    from flows87.pipeline.schedule import Interval
    from flows87.pipeline.stages.config import RunConfig
    from flows87.pipeline.stages.publish import publish_interval

    workers = {env["FLOWS87_CELERY_WORKER"] for env in cluster.worker_env.values()}
    assert len(workers) == WORKERS
    cluster.wait_for_dag(DAG_ID)
    cluster.unpause(DAG_ID)
    t0 = time.monotonic()
    run_id = cluster.trigger(
        DAG_ID,
        LOGICAL,
        {"source": str(data_dir), "lookback_days": DAYS, "partitions": PARTITIONS},
    )
    cluster.wait_for_run(DAG_ID, run_id, timeout=900)
    seconds = time.monotonic() - t0

    tis = cluster.task_instances(DAG_ID, run_id)
    assert {t["state"] for t in tis} == {"success"}, tis
    for name in MAPPED:
        assert sorted(t["map_index"] for t in tis if t["task_id"] == name) == list(
            range(PARTITIONS)
        )
    # every task ran on a Celery worker, and the mapped parts on both of them
    hosts = {(t["task_id"], t["map_index"]): t["hostname"] for t in tis}
    assert set(hosts.values()) <= workers, hosts
    assert {t["hostname"] for t in tis if t["task_id"] in MAPPED} == workers, hosts
    # nothing of the deployment listens beyond loopback (Redis binds 127.0.0.1 only)
    assert {address for address, _ in cluster.listening()} == {"127.0.0.1"}

    # the single-process run of the same input and interval, published the same way
    home = Path(cluster.env["FLOWS87_HOME"])
    interval = Interval.of(LOGICAL - timedelta(days=1), LOGICAL, DAYS)
    config = RunConfig(
        interval_start=interval.window_start, interval_end=interval.end, select_interval=True
    )
    one = tmp_path / "run"
    run(data_dir, one, config)
    published = tmp_path / "published"
    publish_interval(one, interval.key, interval.start, interval.end, published)

    mine = pl.read_parquet(home / "published" / "cases.parquet")
    theirs = pl.read_parquet(published / "cases.parquet")
    assert mine.height > 0
    assert_frame_equal(
        mine.select("case_id", "accounts", "risk_score"),
        theirs.select("case_id", "accounts", "risk_score"),
        check_exact=True,
    )
    assert digest(home / "published" / "cases.parquet") == digest(published / "cases.parquet")
    # publish loaded them into the PostgreSQL case store
    engine = sqlalchemy.create_engine(cluster.env["FLOWS87_DB_URL"])
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(sqlalchemy.text("SELECT case_id FROM cases")).scalars())
    finally:
        engine.dispose()
    assert set(mine["case_id"]) <= stored, sorted(set(mine["case_id"]) - stored)[:5]
    per_worker = {w: sum(1 for h in hosts.values() if h == w) for w in sorted(workers)}
    print(f"\ncelery run: {seconds:.1f} s, {len(tis)} task instances, per worker {per_worker}")
