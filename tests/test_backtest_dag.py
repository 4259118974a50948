"""The backtest DAG, run for real with dag.test() on an SQLite metadata DB (the temporary
AIRFLOW_HOME of conftest.py) on a labelled run directory made by flows87.pipeline.run.run."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from evaluation_data import RUN_KEY

from flows87 import catalogue
from flows87.research import backtest

DAG_FILE = Path(__file__).resolve().parents[1] / "dags" / "flows87_backtest.py"


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory):
    from airflow.cli.commands.dag_command import dag_reserialize
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    dag_reserialize(argparse.Namespace(bundle_name=None))
    bag = DagBag(dag_folder=DAG_FILE)
    assert bag.import_errors == {}
    return bag.get_dag("flows87_backtest")


@pytest.fixture
def home(labelled_run: Path, tmp_path: Path) -> Path:
    """A FLOWS87_HOME holding a copy of the labelled run as runs/<RUN_KEY>/."""
    source = labelled_run
    target = tmp_path / "home" / "runs" / RUN_KEY
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("evaluation", "quality", "stages")
    )
    return tmp_path / "home"


def run_backtest(dag, home: Path, **conf):
    """dag.test with every param given (the defaults unless in `conf`): dag.test keeps the
    previous run's conf in the module-scoped DAG's params otherwise."""
    defaults = {name: spec["default"] for name, spec in backtest.params_schema().items()}
    os.environ["FLOWS87_HOME"] = str(home)
    try:
        return dag.test(run_conf={**defaults, **conf})
    finally:
        del os.environ["FLOWS87_HOME"]


def states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def test_backtest_dag_is_scheduled_on_published_cases(dag) -> None:
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    condition = repr(dag.timetable.asset_condition)
    assert "name='flows87_cases'" in condition and "uri='flows87://published/cases'" in condition
    assert set(dag.params.keys()) == {
        "run_dir",
        "budgets",
        "sweep",
        "sweep_method",
        "sweep_settings",
        "sweep_params",
        "sweep_max_alert_rate",
        "seed",
    }
    assert dag.params["sweep"] is False  # the sweep is optional, off by default
    tasks = {t.task_id: t for t in dag.tasks}
    assert tasks["evaluate"].upstream_task_ids == {"locate"}
    assert tasks["sweep"].upstream_task_ids == {"locate", "evaluate"}
    assert tasks["sweep"].trigger_rule == "none_failed"


def test_backtest_by_hand_evaluates_the_latest_run(dag, home: Path) -> None:
    dag_run = run_backtest(dag, home, budgets=[0.01, 0.05])
    assert str(dag_run.state) == "success", states(dag_run)
    assert states(dag_run) == {"locate": "success", "evaluate": "success", "sweep": "skipped"}
    assert not (home / "runs" / RUN_KEY / "evaluation" / "sweep").exists()
    out = home / "runs" / RUN_KEY / "evaluation"
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["budgets"] == ["1.0%", "5.0%"]
    assert ev["labelled"] and 0 < ev["account_level"]["average_precision"] <= 1
    for name in ("evaluation.html", "evaluation.md", "pr_curve.png", "recall_vs_budget.png"):
        assert (out / name).exists(), name


def test_backtest_of_an_unlabelled_run_is_skipped(dag, home: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(home / "runs" / RUN_KEY, bare)
    pl.read_parquet(bare / "accounts_scored.parquet").drop(
        "is_suspicious", "typology"
    ).write_parquet(bare / "accounts_scored.parquet")
    dag_run = run_backtest(dag, home, run_dir=str(bare))
    got = states(dag_run)
    assert got == {"locate": "success", "evaluate": "skipped", "sweep": "skipped"}, got
    assert not (bare / "evaluation").exists()
    # asked for, the sweep is skipped too: it needs labels to measure recall
    dag_run = run_backtest(dag, home, run_dir=str(bare), sweep=True)
    got = states(dag_run)
    assert got == {"locate": "success", "evaluate": "skipped", "sweep": "skipped"}, got
    assert not (bare / "evaluation").exists()
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="has no labels"):
        backtest.sweep_task({"params": {"sweep": True}}, str(bare))
    with pytest.raises(AirflowSkipException, match="sweep is off"):
        backtest.sweep_task({"params": {"sweep": False}}, str(bare))
    # a run_dir that is no run fails the first task at once
    dag_run = run_backtest(dag, home, run_dir=str(tmp_path / "nowhere"))
    assert states(dag_run)["locate"] == "failed"


def test_backtest_with_sweep_writes_the_pareto_front_and_a_patch(
    dag,
    home: Path,
    tmp_path: Path,
) -> None:
    # A budget just below the defaults' alert rate: the defaults are out of it, and a setting
    # asking more of a case (three families of evidence) is within it, so it is chosen.
    metrics = json.loads((home / "runs" / RUN_KEY / "metrics.json").read_text())
    budget = round(metrics["accounts"]["alert_rate"] - 0.005, 4)
    dag_run = run_backtest(
        dag,
        home,
        sweep=True,
        sweep_method="grid",
        sweep_params=["scoring.min_families"],
        sweep_settings=5,
        sweep_max_alert_rate=budget,
    )
    got = states(dag_run)
    assert got == {"locate": "success", "evaluate": "success", "sweep": "success"}, got
    out = home / "runs" / RUN_KEY / backtest.SWEEP_DIR
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["mode"].startswith("grid") and doc["max_alert_rate"] == budget
    assert len(doc["settings"]) >= 2 and doc["settings"][0]["setting"] == {}
    assert doc["pareto"] and doc["chosen"] is not None
    chosen = doc["settings"][doc["chosen"]]
    base = doc["settings"][0]["metrics"]
    assert base["alert_rate"] > budget >= chosen["metrics"]["alert_rate"]
    assert chosen["setting"] == {"scoring.min_families": 3}
    assert "Pareto front" in (out / "sweep.md").read_text()
    assert (out / "pareto.png").stat().st_size > 0
    # the patch: a unified diff of rule files' defaults that applies to a copy of rules/
    patch = out / "chosen.patch"
    text = patch.read_text()
    assert text.startswith("--- a/") and "\n+++ b/" in text and "\n@@ " in text
    files = {line[6:] for line in text.splitlines() if line.startswith("--- a/")}
    assert files and all(f.startswith(("rules/", "rules/settings/")) for f in files), files
    shutil.copytree(catalogue.rules_dir(), tmp_path / "repo" / "rules")
    subprocess.run(["git", "apply", "--check", str(patch)], cwd=tmp_path / "repo", check=True)
    subprocess.run(["git", "apply", str(patch)], cwd=tmp_path / "repo", check=True)
    changed = (tmp_path / "repo" / "rules" / "settings" / "scoring.yaml").read_text()
    assert "\nmin_families: 3\n" in changed
    # the task's XCom summary names the patch
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = next(t for t in dag_run.get_task_instances(session=session) if t.task_id == "sweep")
        summary = ti.xcom_pull(task_ids="sweep", session=session)
    assert summary["patch"] == str(patch) and summary["chosen"]["setting"] == chosen["setting"]


def test_run_dir_comes_from_the_latest_triggering_asset_event(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWS87_HOME", str(home))

    def event(day: int, interval: str) -> SimpleNamespace:
        return SimpleNamespace(
            extra={"interval": interval, "cases": 3, "path": "x"},
            timestamp=datetime(2026, 1, day, tzinfo=UTC),
        )

    asset = object()
    older = "2026-01-06T0000Z--2026-01-07T0000Z"
    context = {
        "params": {"run_dir": ""},
        "triggering_asset_events": {asset: [event(9, RUN_KEY), event(8, older)]},
    }
    assert backtest.resolve_run_dir(context) == home / "runs" / RUN_KEY
    # the run directory is gone: the published copy of the interval
    published = home / "published" / "intervals" / RUN_KEY
    shutil.move(home / "runs" / RUN_KEY, published)
    assert backtest.resolve_run_dir(context) == published
    context["triggering_asset_events"] = {asset: [event(9, older)]}
    with pytest.raises(backtest.InputError, match="no finished run directory"):
        backtest.resolve_run_dir(context)
    assert backtest.resolve_run_dir({"params": {"run_dir": str(published)}}) == published
