"""The Airflow DAGs, run for real with dag.test() on an SQLite metadata DB in a temporary AIRFLOW_HOME.

One daily run on generated data is shared by several tests (a run takes seconds); each test that
needs its own published state gets its own FLOWS87_HOME.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.io import write_parquet
from flows87.research.synth import generate

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
FIRST_DAY = date(2026, 3, 1)
DAYS = 14
LOGICAL = datetime(
    2026, 3, 15, tzinfo=UTC
)  # the run at midnight judges 14 March, looks back 14 days
KEY = "2026-03-14T0000Z--2026-03-15T0000Z"
HEAVY = ("great_expectations", "pyod", "networkx", "sklearn", "flows87.pipeline.features.compute")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB with the DAG files parsed into it, as the DAG processor does
    (that also activates the assets they declare, so asset events are recorded)."""
    import argparse

    from airflow.cli.commands.dag_command import dag_reserialize
    from airflow.utils import db

    db.initdb()
    dag_reserialize(argparse.Namespace(bundle_name=None))


@pytest.fixture(scope="session")
def daily(airflow_db: None):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=DAGS)
    assert bag.import_errors == {}
    return bag.get_dag("flows87_daily")


@pytest.fixture(scope="session")
def data_one(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated input in one file: transactions.parquet and accounts.parquet."""
    folder = tmp_path_factory.mktemp("dag-data-one")
    data = generate(900, DAYS, 11, start=FIRST_DAY)
    write_parquet(data.accounts, folder / "accounts.parquet")
    write_parquet(data.transactions, folder / "transactions.parquet")
    return folder


@pytest.fixture(scope="session")
def data_dir(data_one: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same rows as a landing folder of three transaction files (the DAG reads a file per
    task) beside the accounts."""
    folder = tmp_path_factory.mktemp("dag-data")
    tx = pl.read_parquet(data_one / "transactions.parquet")
    cuts = [0, tx.height // 3, 2 * tx.height // 3, tx.height]
    for i in range(3):
        part = tx.slice(cuts[i], cuts[i + 1] - cuts[i])
        write_parquet(part, folder / "transactions" / f"part-{i}.parquet")
    write_parquet(pl.read_parquet(data_one / "accounts.parquet"), folder / "accounts.parquet")
    return folder


def run_daily(dag, home: Path, source: Path, logical: datetime = LOGICAL, **params):
    """One dag.test() run of the interval ending at `logical`, writing under `home`."""
    os.environ["FLOWS87_HOME"] = str(home)
    try:
        return dag.test(
            logical_date=logical,
            run_conf={"source": str(source), "lookback_days": DAYS, **params},
        )
    finally:
        del os.environ["FLOWS87_HOME"]


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {
            ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state)
            for ti in tis
        }


def store_cases(home: Path) -> dict[str, str]:
    """case_id -> status of every case in the interval home's case store."""
    from sqlalchemy import text

    from flows87.investigate.store import Store

    store = Store.open(home / "cases.db")
    try:
        with store.session() as s:
            return dict(s.execute(text("select case_id, status from cases")).all())
    finally:
        store.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def first_run(daily, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("home")
    dag_run = run_daily(daily, home, data_dir)
    return home, dag_run


# --- the DAG files ----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_file_imports_quickly_without_warnings_or_heavy_work(
    path: Path, tmp_path: Path
) -> None:
    """Parsed in a fresh interpreter, as the DAG processor does, every few seconds."""
    probe = f"""
import json, sys, time, warnings
warnings.simplefilter("always")
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    bag = DagBag(dag_folder={str(path)!r})
t2 = time.perf_counter()
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "dags": sorted(bag.dag_ids),
    "warnings": [f"{{w.filename}}:{{w.lineno}}: {{w.message}}" for w in caught],
    "heavy": [m for m in {HEAVY!r} if m in sys.modules],
    "parse_seconds": t2 - t1,
}}))
"""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "FLOWS87_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert out["dags"], "no DAG in the file"
    ours = [w for w in out["warnings"] if "/dags/" in w or "/flows87/" in w]
    assert ours == []
    assert out["heavy"] == [], "the DAG file imports the engine at parse time"
    assert out["parse_seconds"] < 5.0


def test_daily_dag_params_and_structure(daily) -> None:
    assert set(daily.params.keys()) >= {
        "source",
        "format",
        "rules_dir",
        "windows",
        "lookback_days",
        "alert_budget",
        "partitions",
    }
    tasks = {t.task_id: t for t in daily.tasks}
    assert tasks["read_file"].upstream_task_ids == {"list_inputs"}  # a task per input file
    assert tasks["gate_accounts"].upstream_task_ids == {"read_file"}
    assert tasks["gate_file"].upstream_task_ids == {"gate_accounts", "list_inputs"}  # per file
    assert tasks["gate_raw"].upstream_task_ids == {"gate_file"}
    assert "read" not in tasks
    assert tasks["gate_signals"].upstream_task_ids == {"merge_graph", "combine_detectors"}
    # the graph stage: a mapped task per partition, then their merge
    assert tasks["graph_prime"].upstream_task_ids == {"merge_rules"}
    assert tasks["graph_part"].upstream_task_ids == {"graph_prime", "partition"}
    assert tasks["merge_graph"].upstream_task_ids == {"graph_part"}
    assert "graph" not in tasks
    assert tasks["detectors"].upstream_task_ids == {"fit_detectors", "partition"}
    assert tasks["publish"].upstream_task_ids == {"report"}
    assert tasks["read_file"].retries >= 1 and tasks["publish"].retries >= 1
    assert [o.name for o in tasks["publish"].outlets] == ["flows87_cases"]


# --- end to end ----------------------------------------------------------------------------


def test_daily_run_publishes_cases(first_run) -> None:
    home, dag_run = first_run
    assert str(dag_run.state) == "success", states(dag_run)
    run_dir = home / "runs" / KEY
    for name in ("transactions.parquet", "features.parquet", "signals.parquet", "cases.parquet"):
        assert (run_dir / name).exists(), name
    cases = pl.read_parquet(home / "published" / "cases.parquet")
    assert cases.height > 0
    assert set(cases["interval_key"]) == {KEY}
    assert (home / "published" / "intervals" / KEY / "report.html").exists()
    # the investigators' case store holds the same cases, each once, as new
    assert store_cases(home) == dict.fromkeys(cases["case_id"].to_list(), "new")
    # the labelled demo: cases hold suspicious accounts of several typologies
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet")
    caught = scored.filter(pl.col("case_id").is_not_null() & pl.col("is_suspicious"))
    assert caught["typology"].n_unique() >= 6
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["command"] == "flows87_daily"


def test_publish_emits_asset_event(first_run) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    home, dag_run = first_run
    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == "flows87_cases", AssetEvent.source_run_id == dag_run.run_id)
            .all()
        )
        assert len(events) == 1
        assert events[0].extra["interval"] == KEY
        assert events[0].extra["cases"] > 0
        assert events[0].extra["path"] == str(home / "published" / "cases.parquet")


def test_demo_records_the_runs_real_start(first_run) -> None:
    """`dags test` records a run's start as its logical date (apache/airflow#66127): the midnight
    of the day replayed, so the UI showed the demo's run as lasting hours. scripts/demo.sh then runs
    scripts/dags_test_start.py, which sets it to when the run's first task started."""
    import importlib.util

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def recorded() -> tuple[datetime, datetime]:
        with create_session() as session:
            run = session.scalars(
                select(DagRun).where(
                    DagRun.dag_id == "flows87_daily", DagRun.logical_date == LOGICAL
                )
            ).one()
            return run.start_date, run.end_date

    spec = importlib.util.spec_from_file_location(
        "dags_test_start", ROOT / "scripts" / "dags_test_start.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    start, end = recorded()
    assert script.main(["flows87_daily"]) == 0
    real_start, real_end = recorded()
    assert real_end == end and real_start >= start
    assert 0 < (real_end - real_start).total_seconds() < 900  # not months, since LOGICAL
    assert script.fix_test_runs("flows87_daily") == []  # once is enough


def test_rerun_of_the_same_interval_changes_nothing(daily, first_run, data_dir: Path) -> None:
    home, _ = first_run
    published = home / "published"
    before = pl.read_parquet(published / "cases.parquet")
    history_before = pl.read_parquet(published / "cases_history.parquet")
    again = run_daily(daily, home, data_dir)
    assert str(again.state) == "success"
    after = pl.read_parquet(published / "cases.parquet")
    assert_frame_equal(before, after)
    assert pl.read_parquet(published / "cases_history.parquet").height == history_before.height
    assert after["case_id"].is_unique().all()
    assert sorted(store_cases(home)) == sorted(after["case_id"].to_list())


def test_corrupted_input_stops_at_the_raw_gate_and_publishes_nothing(
    daily,
    first_run,
    data_one: Path,
    tmp_path: Path,
) -> None:
    home, _ = first_run
    published = home / "published"
    before = {p.name: digest(p) for p in published.glob("*.parquet")}
    snapshot = digest(published / "intervals" / KEY / "cases.parquet")

    bad = tmp_path / "bad"
    tx = pl.read_parquet(data_one / "transactions.parquet")
    # a broken extract: one row in ten repeats the next row's id, far above the gate's 1 %
    # limit (the rows parse, so it is the raw gate that has to catch them)
    tx = tx.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(pl.col("txn_id").shift(-1))
        .otherwise(pl.col("txn_id"))
        .alias("txn_id")
    )
    write_parquet(tx, bad / "transactions.parquet")
    write_parquet(pl.read_parquet(data_one / "accounts.parquet"), bad / "accounts.parquet")

    dag_run = run_daily(daily, home, bad)
    got = states(dag_run)
    assert str(dag_run.state) == "failed"
    assert got["list_inputs"] == got["read_file[0]"] == "success"  # one file: one piece
    assert got["gate_accounts"] == got["gate_file[0]"] == "success"  # the file's checks ran
    assert got["gate_raw"] == "failed"  # the merge stops the run
    for downstream in ("partition", "gate_features", "group_cases", "report", "publish"):
        assert got[downstream] == "upstream_failed", (downstream, got)

    run_dir = home / "runs" / KEY
    quarantine = pl.read_parquet(run_dir / "quarantine" / "raw_transactions.parquet")
    assert quarantine.height >= tx.height // 10
    assert quarantine["reason"].str.contains("txn_id").all()
    assert (run_dir / "quality" / "raw_transactions.md").exists()
    assert json.loads((run_dir / "run.failed.json").read_text())["status"] == "failed"
    # nothing published moved
    assert {p.name: digest(p) for p in published.glob("*.parquet")} == before
    assert digest(published / "intervals" / KEY / "cases.parquet") == snapshot


def test_gate_failure_message_names_checks_and_report(tmp_path: Path, data_one: Path) -> None:
    """What the operator reads in the failed task's log: the message and the report itself."""
    from airflow.sdk.exceptions import AirflowFailException

    from flows87.pipeline import tasks

    bad = tmp_path / "bad"
    tx = pl.read_parquet(data_one / "transactions.parquet").with_columns(
        pl.lit(None, dtype=pl.String).alias("currency")
    )
    write_parquet(tx, bad / "transactions.parquet")
    write_parquet(pl.read_parquet(data_one / "accounts.parquet"), bad / "accounts.parquet")
    context = {
        "params": {"source": str(bad), "lookback_days": DAYS},
        "data_interval_start": LOGICAL - timedelta(days=1),
        "data_interval_end": LOGICAL,
    }
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("flows87").addHandler(handler)
    os.environ["FLOWS87_HOME"] = str(tmp_path / "home")
    try:
        tasks.call(context, "read")
        with pytest.raises(AirflowFailException) as caught:
            tasks.call(context, "gate_raw")
    finally:
        del os.environ["FLOWS87_HOME"]
        logging.getLogger("flows87").removeHandler(handler)
    text = str(caught.value)
    assert "raw_transactions" in text and "currency" in text
    assert "quality/raw_transactions.md" in text and "quarantine" in text
    report = (tmp_path / "home" / "runs" / KEY / "quality" / "raw_transactions.md").read_text()
    logged = "\n".join(r.getMessage() for r in records)
    assert report.splitlines()[0] in logged and "currency" in logged


def test_partitioned_run_equals_unpartitioned(
    daily,
    first_run,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    home, _ = first_run
    dag_run = run_daily(daily, tmp_path / "home", data_dir, partitions=2)
    got = states(dag_run)
    assert str(dag_run.state) == "success", got
    for mapped in ("features", "rules", "detectors", "graph_part", "score_accounts"):
        assert {k for k in got if k.startswith(mapped + "[")} == {
            f"{mapped}[{i}]" for i in range(2)
        }, got
    one, two = home / "runs" / KEY, tmp_path / "home" / "runs" / KEY

    def frame(run_dir: Path, name: str, keys: list[str]) -> pl.DataFrame:
        return pl.read_parquet(run_dir / name).sort(keys)

    keys = ["account_id", "window", "window_start"]
    assert_frame_equal(
        frame(one, "features.parquet", keys), frame(two, "features.parquet", keys), rel_tol=1e-9
    )
    sig_keys = ["source", "signal_id", "account_id", "window_start"]
    a, b = frame(one, "signals.parquet", sig_keys), frame(two, "signals.parquet", sig_keys)
    assert_frame_equal(
        a.drop("score", "evidence", "summary"), b.drop("score", "evidence", "summary")
    )
    assert_frame_equal(a.select("score"), b.select("score"), rel_tol=1e-9)
    assert_frame_equal(
        pl.read_parquet(one / "anomaly_scores.parquet"),
        pl.read_parquet(two / "anomaly_scores.parquet"),
        check_exact=True,
    )
    cases_one = pl.read_parquet(one / "cases.parquet")
    cases_two = pl.read_parquet(two / "cases.parquet")
    assert cases_one.height > 0
    assert_frame_equal(
        cases_one.select("case_id", "rank", "accounts", "signal_ids"),
        cases_two.select("case_id", "rank", "accounts", "signal_ids"),
    )
    assert_frame_equal(cases_one.select("risk_score"), cases_two.select("risk_score"), rel_tol=1e-9)


def test_next_interval_adds_to_the_queue_without_duplicates(
    daily, first_run, data_dir: Path
) -> None:
    """What a backfill or catch-up does: one run per interval, each published beside the others."""
    home, _ = first_run
    # the data ends on 15 March, so the next day's window holds 13 of its 14 days
    dag_run = run_daily(daily, home, data_dir, LOGICAL + timedelta(days=1))
    assert str(dag_run.state) == "success", states(dag_run)
    nxt = "2026-03-15T0000Z--2026-03-16T0000Z"
    assert (home / "runs" / nxt / "cases.parquet").exists()
    history = pl.read_parquet(home / "published" / "cases_history.parquet")
    assert set(history["interval_key"]) == {KEY, nxt}
    queue = pl.read_parquet(home / "published" / "cases.parquet")
    assert queue["case_id"].is_unique().all()
    assert set(queue["case_id"]) == set(history["case_id"])
    again = queue.filter(pl.col("intervals_seen") == 2)
    assert again.height > 0, "the same schemes should be found again a day later"
    assert set(again["interval_key"]) == {nxt}


def test_the_dag_finds_what_flows87_run_finds(first_run, data_one: Path, tmp_path: Path) -> None:
    """The DAG's tasks and `flows87 run` run one plan (files between tasks, memory in one
    process): every table of the run directory is the same, row for row. The DAG read its
    input's three files a task each; `flows87 run` reads the same rows in one file (the
    transactions' lineage aside: source_row, each file's own row, and source_file, which only
    rows of several files have) and publishes the same cases."""
    from flows87.pipeline.run import run
    from flows87.pipeline.stages.config import RunConfig

    home, _ = first_run
    config = RunConfig(
        interval_start=LOGICAL - timedelta(days=DAYS), interval_end=LOGICAL, select_interval=True
    )
    run(data_one, tmp_path / "run", config)
    dag_dir, cli_dir = home / "runs" / KEY, tmp_path / "run"
    assert pl.read_parquet(dag_dir / "cases.parquet").height > 0
    tables = sorted(p.name for p in dag_dir.glob("*.parquet"))
    assert tables == sorted(p.name for p in cli_dir.glob("*.parquet"))
    for name in tables:
        dag, cli = pl.read_parquet(dag_dir / name), pl.read_parquet(cli_dir / name)
        if name == "transactions.parquet":
            assert dag["source_row"].max() < cli["source_row"].max()  # three files' rows
            assert dag["source_file"].n_unique() == 3 and "source_file" not in cli.columns
            dag, cli = dag.drop("source_row", "source_file"), cli.drop("source_row")
        try:
            assert_frame_equal(dag, cli, check_exact=True)
        except AssertionError as err:
            raise AssertionError(f"{name} differs: {err}") from None
    assert digest(dag_dir / "cases.parquet") == digest(cli_dir / "cases.parquet")


def _decide_every_case(home: Path, at: datetime) -> int:
    """Close every case in the home's store, alternately reported and false positive, decided
    at `at` (through the store's models: the workflow would stamp today's date)."""
    import json as _json

    from flows87.investigate.store import Store
    from flows87.investigate.store.models import Case, CaseAccount, Disposition
    from flows87.investigate.store.users import create_user

    store = Store.open(home / "cases.db")
    try:
        with store.session(write=True) as s:
            who = create_user(s, "learner", "investigator", "a-long-test-password-1")
            cases = s.query(Case).order_by(Case.case_id).all()
            for i, case in enumerate(cases):
                case.status = "closed"
                accounts = [
                    a.account_id
                    for a in s.query(CaseAccount)
                    .filter(CaseAccount.case_id == case.case_id)
                    .order_by(CaseAccount.position)
                ]
                s.add(
                    Disposition(
                        case_id=case.case_id,
                        disposition="reported" if i % 2 == 0 else "false_positive",
                        reason="test",
                        decided_by_id=who.id,
                        decided_at=at,
                        risk_score=case.risk_score,
                        accounts=_json.dumps(accounts),
                        signal_ids=_json.dumps([]),
                    )
                )
            return len(cases)
    finally:
        store.dispose()


def test_learn_task_without_and_with_enough_decisions(
    daily, first_run, data_dir: Path, tmp_path: Path
) -> None:
    """The first interval has no decisions: no model, the ranking is today's. Decisions made
    before the next interval begins train a model there, versioned in its run directory and
    in published/models, and its score blends into the cases."""
    import shutil

    home, _ = first_run
    first = json.loads((home / "runs" / KEY / "stages" / "learn.json").read_text())
    assert first["counts"]["model"] == "none" and not first["counts"]["retrained"]
    assert (home / "published" / "intervals" / KEY / "learning_matrix.parquet").exists()
    mine = tmp_path / "home"
    shutil.copytree(home, mine)
    assert _decide_every_case(mine, LOGICAL - timedelta(hours=1)) >= 10
    dag_run = run_daily(daily, mine, data_dir, LOGICAL + timedelta(days=1))
    assert str(dag_run.state) == "success", states(dag_run)
    run = mine / "runs" / "2026-03-15T0000Z--2026-03-16T0000Z"
    learned = json.loads((run / "stages" / "learn.json").read_text())["counts"]
    assert learned["retrained"] and learned["labelled"] >= 10
    # the first interval's accounts that no case named train as presumed negatives
    assert learned["presumed_negatives"] > 0
    meta = json.loads((run / "learning" / "model" / "model.meta.json").read_text())
    assert meta["version"] == learned["model"]
    current = json.loads((mine / "published" / "models" / "current.json").read_text())
    assert current["version"] == meta["version"]
    assert (mine / "published" / "models" / meta["version"] / "model.json").exists()
    cases = pl.read_parquet(run / "cases.parquet")
    assert cases["learned_score"].is_not_null().all()
    assert cases["rank"].to_list() == list(range(1, cases.height + 1))
