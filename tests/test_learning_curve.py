"""The learning curve (flows87/research/learning): labels from the tuning runs only, the points
asked, metrics in [0, 1], the same figures for the same seed."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from flows87.io import write_parquet
from flows87.research.learning import LeakError, check_no_leak, learning_curve, markdown
from flows87.research.learning.labels import period_truth, reviewed_labels
from flows87.research.synth import generate
from flows87.rundir import RunDir

CASES = (2, 5, 1000)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """Daily runs of generated labelled data: two tuning days, then the report day."""
    from flows87.pipeline.run import run
    from flows87.pipeline.stages.config import RunConfig

    base = tmp_path_factory.mktemp("learning")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWS87_HOME", str(base / "home"))  # no case store, no published model
        mp.delenv("FLOWS87_DB_URL", raising=False)
        data = generate(1500, 7, 5)
        write_parquet(data.accounts, base / "data" / "accounts.parquet")
        write_parquet(data.transactions, base / "data" / "transactions.parquet")
        first = data.transactions["ts"].min()
        assert isinstance(first, datetime)
        day0 = first.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        dirs = []
        for d in range(4, 7):
            start = day0 + timedelta(days=d)
            cfg = RunConfig(
                select_interval=True, interval_start=start, interval_end=start + timedelta(1)
            )
            dirs.append(base / f"run-{d}")
            run(base / "data", dirs[-1], cfg)
    return dirs[:-1], dirs[-1]


def curve(train: list[Path], test: Path, methods: tuple[str, ...] = ("xgboost",)) -> dict:
    return learning_curve(train, test, cases=CASES, methods=methods)


@pytest.fixture(scope="module")
def doc(runs: tuple[list[Path], Path]) -> dict[str, Any]:
    return curve(*runs, methods=("xgboost", "xgbod"))


def metrics_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = [doc["today"]]
    for points in doc["methods"].values():
        for p in points.values():
            out += [m for m in (p["learned"], p["blend"]) if m is not None]
    return out


def test_the_curve_has_the_points_asked_and_metrics_in_range(doc: dict[str, Any]) -> None:
    assert doc["columns"] == ["2", "5", "1000", "all"]
    assert set(doc["methods"]) == {"xgboost", "xgbod"}
    for points in doc["methods"].values():
        assert list(points) == doc["columns"]
    reviewed = [doc["labels"][c]["cases_reviewed"] for c in ("2", "5", "1000")]
    assert reviewed[:2] == [2, 5]
    assert reviewed[2] == doc["tuning_cases"] < 1000  # capped by the cases there are
    sizes = [doc["labels"][c]["accounts"] for c in doc["columns"]]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[-2]
    trained = [p for p in doc["methods"]["xgboost"].values() if p["learned"] is not None]
    assert trained, "no point had enough labels to train"
    for m in metrics_of(doc):
        for key in ("pr_auc", "precision_at_budget", "recall_at_budget"):
            assert m[key] is None or 0.0 <= m[key] <= 1.0
    text = markdown(doc)
    assert "blend (xgboost)" in text and "all labels" in text


def test_the_same_seed_gives_the_same_curve(
    runs: tuple[list[Path], Path], doc: dict[str, Any]
) -> None:
    again = curve(*runs, methods=("xgboost", "xgbod"))

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {
            m: {c: {k: v for k, v in p.items() if k != "seconds"} for c, p in pts.items()}
            for m, pts in d["methods"].items()
        }

    assert strip(again) == strip(doc)
    assert again["labels"] == doc["labels"]


def test_labels_come_from_the_tuning_runs_only(
    runs: tuple[list[Path], Path], doc: dict[str, Any], tmp_path: Path
) -> None:
    """Marking every account of the report run suspicious changes what is measured, never what
    is trained on: training labels are the tuning period's."""
    train, test = runs
    flipped = tmp_path / "report"
    shutil.copytree(test, flipped)
    files = RunDir(flipped)
    for path in (files.transactions, files.accounts_scored):
        frame = pl.read_parquet(path).with_columns(pl.lit(True).alias("is_suspicious"))
        write_parquet(frame, path)
    other = curve(train, flipped)
    assert other["labels"] == doc["labels"]
    assert other["test_suspicious"] == other["test_accounts"] != doc["test_suspicious"]
    for name, point in other["methods"]["xgboost"].items():
        mine = doc["methods"]["xgboost"][name]
        assert (point["positives"], point["negatives"]) == (mine["positives"], mine["negatives"])


def test_a_label_from_after_the_cut_is_refused(runs: tuple[list[Path], Path]) -> None:
    train, test = runs
    labels, _ = reviewed_labels(train[-1], 1000)
    check_no_leak(labels, train[-1], test)  # the tuning period's own truth passes
    # an account the report period shows laundering, labelled so for training: refused
    later = period_truth(test).filter(pl.col("label"))
    known = period_truth(train[-1]).filter(~pl.col("label"))
    leaked = later.join(known.select("account_id"), on="account_id", how="semi").head(1)
    assert leaked.height == 1, "the data has no account turning suspicious after the cut"
    with pytest.raises(LeakError, match="truth"):
        check_no_leak(
            pl.concat([labels.join(leaked, on="account_id", how="anti"), leaked]),
            train[-1],
            test,
        )
    # a tuning run that does not end before the report run begins: refused
    with pytest.raises(LeakError, match="after the scored one"):
        check_no_leak(period_truth(test), test, train[-1])


def test_an_account_innocent_in_the_tuning_period_is_a_negative(
    runs: tuple[list[Path], Path],
) -> None:
    """An account labelled suspicious whose laundering the tuning run does not show, or an
    innocent counterparty of a suspicious transaction, trains as a negative."""
    train, _ = runs
    truth = period_truth(train[0])
    scored = pl.read_parquet(RunDir(train[0]).accounts_scored).select("account_id", "is_suspicious")
    joined = truth.join(scored, on="account_id", how="left")
    assert joined.filter(pl.col("label") & ~pl.col("is_suspicious").fill_null(False)).is_empty()
    assert joined["label"].sum() > 0


def test_evaluate_learning_shows_the_runs_model_beside_today(
    runs: tuple[list[Path], Path], tmp_path: Path
) -> None:
    """A run whose learn step blended a model in: today, learned and blend with the model's
    label counts; without a model, today alone."""
    from flows87.cli import main
    from flows87.pipeline.learn import blend_accounts
    from flows87.pipeline.learn import model as models
    from flows87.research.learning.curve import Split

    train, test = runs
    args = ["--no-plots", "--learning", "--out"]
    assert main(["evaluate", str(test), *args, str(tmp_path / "e0")]) == 0
    side0 = json.loads((tmp_path / "e0" / "evaluation.json").read_text())["learning"]
    assert side0["model"] is None and side0["learned"] is None and side0["today"]["pr_auc"]

    split = Split(train, test)
    labels, _ = split.labels(None)
    settings = models.load_settings()
    fitted = models.train(split.train_matrix, labels, settings)
    blended = shutil.copytree(test, tmp_path / "blended")
    models.save(fitted, blended / "learning" / "model")
    accounts = blend_accounts(
        split.test_scored, models.score(fitted, split.test_matrix), split.critical, 0.5
    )
    write_parquet(accounts, RunDir(blended).accounts_scored)
    assert main(["evaluate", str(blended), *args, str(tmp_path / "e1")]) == 0
    side = json.loads((tmp_path / "e1" / "evaluation.json").read_text())["learning"]
    assert side["today"] == side0["today"]  # today's ranking is the risk before the blend
    assert side["model"]["positives"] == int(labels["label"].sum())
    assert side["learned"]["pr_auc"] is not None and side["blend"]["pr_auc"] is not None
    assert "learned scorer beside today" in (tmp_path / "e1" / "evaluation.md").read_text()


def test_bench_learning_adds_the_curve(
    runs: tuple[list[Path], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows87.cli import main

    monkeypatch.setenv("FLOWS87_HOME", str(tmp_path / "home"))
    data = runs[1].parent / "data"
    args = ["--out", str(tmp_path / "b"), "--split", "0.7", "--learning"]
    assert main(["bench", str(data), *args]) == 0
    doc = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert doc["learning"]["columns"] == ["10", "50", "200", "1000", "all"]
    assert set(doc["learning"]["methods"]) == {"xgboost", "xgbod"}
    assert doc["learning"]["today"]["pr_auc"] == doc["methods"]["flows87"]["metrics"]["pr_auc"]
    assert "learning curve" in (tmp_path / "b" / "bench.md").read_text()


def test_unreviewed_negatives_are_accounts_no_case_named(runs: tuple[list[Path], Path]) -> None:
    from flows87.research.learning.curve import Split

    train, test = runs
    split = Split(train, test)
    extra = split.unreviewed(200, seed=0)
    assert extra.height == 200 and not extra["label"].any()
    assert extra.equals(split.unreviewed(200, seed=0))
    for i, d in enumerate(train):
        named = pl.read_parquet(RunDir(d).cases)["accounts"].explode().drop_nulls()
        keyed = {f"{i}/{a}" for a in named.to_list()}
        assert not keyed & set(extra["account_id"].to_list())
    doc = learning_curve(train, test, cases=(5,), methods=("xgboost",), unreviewed=200)
    assert "xgboost + 200 unreviewed as negatives" in doc["methods"]
