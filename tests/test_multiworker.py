"""The daily DAG through a real scheduler: LocalExecutor, PostgreSQL metadata, parallelism >= 2.

tests/test_dags.py runs the DAG with dag.test(), every task one after another in one process.
Here a deployment as production runs it (tests/airflow_cluster.py: scheduler, DAG processor and
API server in their own processes) runs flows87_daily with 4 partitions, triggered through the
REST API: the mapped partition tasks must run side by side in different worker processes,
exchanging files under FLOWS87_HOME, and publish byte for byte what the single-process run of
the same input and interval publishes; nothing of the deployment may listen beyond loopback.
CI runs it (FLOWS87_REQUIRE_POSTGRES=1); about 2 min on 2 busy cores.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from airflow_cluster import AirflowCluster, parse_time
from polars.testing import assert_frame_equal

from flows87.io import write_parquet
from flows87.research.synth import generate

pytestmark = pytest.mark.slow

DAG_ID = "flows87_daily"
FIRST_DAY = date(2026, 3, 1)
DAYS = 14
LOGICAL = datetime(2026, 3, 15, tzinfo=UTC)  # judges 14 March, looks back 14 days
PARTITIONS = 4
MAPPED = ("features", "rules", "detectors")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def overlapping(tis: list[dict[str, Any]]) -> list[tuple[str, int, str, int]]:
    """Pairs of task instances that ran at the same time: parts of a mapped task, or a part
    beside another task (graph runs beside the detectors' fit and parts). Any pair shows the
    executor ran tasks in parallel; under a loaded machine the scheduler may stagger the parts
    of one short mapped task, so one task's parts alone are not required to meet."""
    spans = []
    for t in tis:
        t0, t1 = parse_time(t["start_date"]), parse_time(t["end_date"])
        assert t0 and t1, t
        spans.append((t["task_id"], t["map_index"], t0, t1))
    return [
        (a[0], a[1], b[0], b[1])
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
        if a[2] < b[3] and b[2] < a[3]
    ]


def small_input(folder: Path) -> Path:
    """900 synthetic accounts over DAYS days ending the day before LOGICAL (also test_celery's)."""
    data = generate(900, DAYS, 11, start=FIRST_DAY)
    write_parquet(data.accounts, folder / "accounts.parquet")
    write_parquet(data.transactions, folder / "transactions.parquet")
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_input(tmp_path_factory.mktemp("mw-data"))


@pytest.fixture(scope="module")
def cluster(
    postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowCluster]:
    database = postgres_server.new_database()
    workdir = tmp_path_factory.mktemp("airflow-cluster")
    env = {"FLOWS87_HOME": str(workdir / "flows87"), "FLOWS87_SCHEDULE": "none"}
    dags = workdir / "dags"  # the product's daily DAG and the test's barrier DAG
    dags.mkdir()
    here = Path(__file__).resolve().parent
    for source in (here.parent / "dags" / "flows87_daily.py", here / "dags" / "flows87_barrier.py"):
        shutil.copy2(source, dags / source.name)
    try:
        with AirflowCluster(
            workdir, postgres_server.url(database), env=env, dags_folder=dags
        ) as airflow:
            yield airflow
    finally:
        postgres_server.drop_database(database)


def test_daily_dag_on_a_parallel_executor_publishes_what_one_process_does(
    cluster: AirflowCluster, data_dir: Path, tmp_path: Path
) -> None:
    from flows87.pipeline.run import run
    from flows87.pipeline.schedule import Interval
    from flows87.pipeline.stages.config import RunConfig
    from flows87.pipeline.stages.publish import publish_interval

    assert cluster.parallelism >= 2
    cluster.wait_for_dag(DAG_ID)
    cluster.unpause(DAG_ID)
    t0 = time.monotonic()
    run_id = cluster.trigger(
        DAG_ID,
        LOGICAL,
        {"source": str(data_dir), "lookback_days": DAYS, "partitions": PARTITIONS},
    )
    cluster.wait_for_run(DAG_ID, run_id, timeout=600)
    seconds = time.monotonic() - t0

    tis = cluster.task_instances(DAG_ID, run_id)
    assert {t["state"] for t in tis} == {"success"}, tis
    for name in MAPPED:
        assert sorted(t["map_index"] for t in tis if t["task_id"] == name) == list(
            range(PARTITIONS)
        )
    # in task processes of their own; whether short tasks overlapped depends on the machine's
    # load (the barrier test below shows two at once without timing)
    mapped_pids = {t["pid"] for t in tis if t["task_id"] in MAPPED}
    assert len(mapped_pids) >= 2, mapped_pids
    met = overlapping(tis)
    # nothing of the deployment listens beyond loopback (Airflow's log server would, on all)
    assert {address for address, _ in cluster.listening()} == {"127.0.0.1"}

    # the single-process run of the same input and interval, published the same way
    home = Path(cluster.env["FLOWS87_HOME"])
    interval = Interval.of(LOGICAL - timedelta(days=1), LOGICAL, DAYS)
    dag_dir = home / "runs" / interval.key
    assert (dag_dir / "cases.parquet").exists(), sorted(p.name for p in home.rglob("*"))
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
    print(
        f"\nmulti-worker run: {seconds:.1f} s, {len(tis)} task instances, "
        f"{len(met)} pairs ran at the same time"
    )


def test_the_executor_runs_two_tasks_at_once(cluster: AirflowCluster, tmp_path: Path) -> None:
    """Each task of tests/dags/flows87_barrier.py waits for the other to start: the run
    succeeds only if the executor ran both at the same time."""
    cluster.wait_for_dag("flows87_barrier")
    cluster.unpause("flows87_barrier")
    run_id = cluster.trigger("flows87_barrier", LOGICAL, {"folder": str(tmp_path)})
    cluster.wait_for_run("flows87_barrier", run_id, timeout=300)
    assert (tmp_path / "a").exists() and (tmp_path / "b").exists()
    tis = cluster.task_instances("flows87_barrier", run_id)
    assert len(overlapping(tis)) == 1, tis
