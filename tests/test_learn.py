"""The learned scorer on hand-made accounts whose labels follow a known rule (real XGBoost and
PyOD XGBOD, no mocks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows87.pipeline.learn import account_matrix, blend_accounts, blend_cases, train
from flows87.pipeline.learn import model as models
from flows87.pipeline.learn.blend import critical_accounts
from flows87.pipeline.stages.learn import (
    choose_model,
    history,
    passed_over,
    presumed_negatives,
)

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
SETTINGS = models.LearnSettings(n_estimators=30, max_depth=3)


def population(n: int = 240, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A learning matrix and the truth: suspicious when `in_count@7d` is high and the
    controller-hub signal fired; the other columns are noise."""
    rng = np.random.default_rng(seed)
    inflow = rng.gamma(2.0, 5.0, n)
    hub = np.where(rng.random(n) < 0.3, rng.uniform(0.5, 1.0, n), np.nan)
    matrix = pl.DataFrame(
        {
            "account_id": [f"a{i:04d}" for i in range(n)],
            "risk:risk_score": rng.random(n),
            "in_count@7d": inflow,
            "signal:ht_controller_hub": hub,
            "anomaly:anomaly_score": rng.random(n),
        }
    )
    truth = matrix.select(
        "account_id",
        ((pl.col("in_count@7d") > 12) & pl.col("signal:ht_controller_hub").is_not_null()).alias(
            "label"
        ),
    )
    return matrix, truth


def decided(truth: pl.DataFrame, at: datetime) -> pl.DataFrame:
    return truth.select(
        "account_id",
        pl.col("label").alias("reported"),
        pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("decided_at"),
    )


def test_the_model_learns_the_rule_behind_the_labels() -> None:
    matrix, truth = population()
    fitted = train(matrix, truth, SETTINGS)
    scores = models.score(fitted, matrix).join(truth, on="account_id")
    pos = scores.filter(pl.col("label"))["learned_score"].mean()
    neg = scores.filter(~pl.col("label"))["learned_score"].mean()
    assert pos > 0.8 > 0.2 > neg  # type: ignore[operator]
    reasons = models.contributions(fitted, matrix, 2).join(truth, on="account_id")
    said = reasons.filter(pl.col("label"))["learned_reasons"].to_list()
    assert all(any("in count (7d)" in r or "ht_controller_hub" in r for r in rs) for rs in said)


def test_a_decision_at_or_after_the_cutoff_is_ignored() -> None:
    """The period being scored never teaches its own model: decisions dated after the interval
    began are left out, and the model is the one trained without them."""
    matrix, truth = population()
    before = decided(truth.head(200), CUTOFF - timedelta(days=3))
    # decisions made during the scored period, the opposite of the truth: they would change
    # the model if they were used
    after = decided(truth.slice(200), CUTOFF + timedelta(hours=1)).with_columns(~pl.col("reported"))
    at_cutoff = decided(truth.slice(190, 10), CUTOFF).with_columns(~pl.col("reported"))
    labels = pl.concat([before, after, at_cutoff])
    model, info = choose_model(labels, matrix, None, SETTINGS, CUTOFF)
    assert model is not None and info["retrained"]
    assert info["labelled"] == 200 and model.meta["labelled"] == 200
    only_before, _ = choose_model(before, matrix, None, SETTINGS, CUTOFF)
    leaked, _ = choose_model(labels, matrix, None, SETTINGS, None)  # no cutoff: all of them
    assert only_before is not None and leaked is not None
    same = models.score(model, matrix)["learned_score"]
    assert same.equals(models.score(only_before, matrix)["learned_score"])
    assert not same.equals(models.score(leaked, matrix)["learned_score"])


def test_retraining_waits_for_enough_new_decisions(tmp_path: Path) -> None:
    matrix, truth = population()
    first = decided(truth.head(100), CUTOFF - timedelta(days=10))
    model, info = choose_model(first, matrix, None, SETTINGS, CUTOFF)
    assert model is not None and info["retrained"]
    models.save(model, tmp_path / "m")
    settings = SETTINGS.model_copy(update={"retrain_min_new": 50})
    few = pl.concat([first, decided(truth.slice(100, 30), CUTOFF - timedelta(days=1))])
    kept, info = choose_model(few, matrix, tmp_path / "m", settings, CUTOFF)
    assert kept is not None and not info["retrained"] and kept.version == model.version
    many = pl.concat([first, decided(truth.slice(100, 60), CUTOFF - timedelta(days=1))])
    new, info = choose_model(many, matrix, tmp_path / "m", settings, CUTOFF)
    assert new is not None and info["retrained"] and info["new_labels"] == 60
    # too few labels and no model: none, with the reason
    none, info = choose_model(first.head(3), matrix, None, SETTINGS, CUTOFF)
    assert none is None and "training needs at least 5" in info["why"]


def publish_interval(published: Path, name: str, end: datetime, matrix, case_accounts) -> None:
    folder = published / "intervals" / name
    folder.mkdir(parents=True)
    matrix.write_parquet(folder / "learning_matrix.parquet")
    pl.DataFrame({"case_id": ["c1"], "accounts": [case_accounts]}).write_parquet(
        folder / "cases.parquet"
    )
    (folder / "run.json").write_text(json.dumps({"params": {"interval_end": end.isoformat()}}))


def test_presumed_negatives_are_accounts_no_case_named_and_nobody_decided(tmp_path: Path) -> None:
    """The queue's passed-over population trains as negatives: never an account a case of an
    earlier interval named, never one an investigator decided, never one of an interval that
    ends after the cutoff; the same draw for the same seed; whether to train still depends on
    decisions alone."""
    matrix, truth = population()
    published = tmp_path / "published"
    ids = matrix["account_id"].to_list()
    publish_interval(published, "i1", CUTOFF - timedelta(days=2), matrix.head(200), ids[:20])
    publish_interval(published, "i2", CUTOFF - timedelta(days=1), matrix.head(200), ids[20:30])
    later = pl.DataFrame({"account_id": ["late1", "late2"]})
    publish_interval(published, "i3", CUTOFF + timedelta(days=1), later, [])
    passed = passed_over(published, CUTOFF)
    assert set(passed["account_id"]) == set(ids[30:200])  # no case named them, none later
    labels = decided(truth.slice(30, 40), CUTOFF - timedelta(hours=1))
    settings = SETTINGS.model_copy(update={"presumed_negatives": 50})
    drawn = presumed_negatives(passed, labels, settings)
    assert drawn.height == 50 and not drawn["label"].any()
    assert drawn.join(labels, on="account_id", how="semi").is_empty()
    assert drawn.equals(presumed_negatives(passed, labels, settings))
    assert presumed_negatives(
        passed, labels, SETTINGS.model_copy(update={"presumed_negatives": 0})
    ).is_empty()
    model, info = choose_model(labels, matrix, None, settings, CUTOFF, drawn)
    assert model is not None and info["presumed_negatives"] == 50
    assert model.meta["labelled"] == 40 and model.meta["presumed_negatives"] == 50
    assert model.meta["negatives"] == 40 - int(labels["reported"].sum()) + 50
    # too few decisions: presumed negatives alone never train a model
    none, info = choose_model(labels.head(3), matrix, None, settings, CUTOFF, drawn)
    assert none is None
    # only the intervals within history_days are read, and only the rows training needs
    recent = passed_over(published, CUTOFF, days=2)  # i1 ended 2 days before: out
    assert set(recent["account_id"]) == set(ids[:20]) | set(ids[30:200])
    wanted = pl.concat([labels.select("account_id"), drawn.select("account_id")])
    rows = history(published, CUTOFF, 0, wanted)
    assert rows is not None and set(rows["account_id"]) == set(wanted["account_id"])
    assert history(published, CUTOFF - timedelta(days=3), 0) is None  # nothing ended by then


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    matrix, truth = population()
    paths = [models.save(train(matrix, truth, SETTINGS), tmp_path / f"m{i}") for i in range(2)]
    assert paths[0].read_bytes() == paths[1].read_bytes()
    meta = [json.loads((p.parent / "model.meta.json").read_text()) for p in paths]
    assert meta[0]["version"] == meta[1]["version"]
    loaded = models.load(tmp_path / "m0")
    again = models.score(loaded, matrix)["learned_score"]
    assert again.equals(models.score(train(matrix, truth, SETTINGS), matrix)["learned_score"])


def test_xgbod_trains_and_scores() -> None:
    matrix, truth = population(120)
    fitted = train(matrix, truth, SETTINGS.model_copy(update={"method": "xgbod"}))
    scores = models.score(fitted, matrix)
    assert scores.height == 120 and scores["learned_score"].is_between(0, 1).all()


def _signal(account: str, source: str, signal_id: str, score: float) -> dict[str, object]:
    return {"account_id": account, "source": source, "signal_id": signal_id, "score": score}


def test_a_critical_account_never_drops_while_others_move_both_ways() -> None:
    signals = pl.DataFrame(
        [
            _signal("crit", "rule", "fa_structuring", 1.0),
            _signal("up", "rule", "ht_late_night_inflows", 0.4),
            _signal("down", "graph", "ml_fan_in", 1.0),  # a pattern, not a critical rule
        ]
    )
    critical = critical_accounts(signals, 1.0)
    assert critical["account_id"].to_list() == ["crit"]
    scored = pl.DataFrame({"account_id": ["crit", "down", "up"], "risk_score": [0.9, 0.9, 0.2]})
    learned = pl.DataFrame(
        {
            "account_id": ["crit", "down", "up"],
            "learned_score": [0.0, 0.0, 1.0],
            "learned_reasons": [[], [], ["signal ht_late_night_inflows 0.4 (+2.00)"]],
        }
    )
    out = blend_accounts(scored, learned, critical, 0.5)
    risk = dict(zip(out["account_id"], out["risk_score"], strict=True))
    assert risk["crit"] == pytest.approx(0.9)  # the model said 0: it stays where it was
    assert risk["down"] == pytest.approx(0.45)  # lowered
    assert risk["up"] == pytest.approx(0.6)  # raised
    today = dict(zip(out["account_id"], out["today_score"], strict=True))
    assert today == {"crit": 0.9, "down": 0.9, "up": 0.2}
    cases = pl.DataFrame(
        {
            "case_id": ["C-crit", "C-down", "C-up"],
            "rank": [1, 2, 3],
            "risk_score": [0.95, 0.94, 0.3],
            "accounts": [["crit"], ["down"], ["up"]],
        }
    )
    ranked = blend_cases(cases, out, critical, 0.5)
    assert ranked.height == 3  # the model never removes a case
    by_id = {r["case_id"]: r for r in ranked.iter_rows(named=True)}
    assert by_id["C-crit"]["risk_score"] == pytest.approx(0.95) and by_id["C-crit"]["rank"] == 1
    assert by_id["C-up"]["rank"] == 2 and by_id["C-down"]["rank"] == 3
    assert by_id["C-up"]["learned_reasons"] == ["signal ht_late_night_inflows 0.4 (+2.00)"]


def test_account_matrix_names_columns_by_source() -> None:
    scored = pl.DataFrame({"account_id": ["a", "b"], "risk_score": [0.5, 0.1]})
    features = pl.DataFrame(
        {
            "account_id": ["a", "a", "b"],
            "window": ["7d", "7d", "30d"],
            "in_count": [3, 9, 4],
        }
    )
    signals = pl.DataFrame([_signal("a", "rule", "r1", 0.3), _signal("a", "rule", "r1", 0.7)])
    anomaly = pl.DataFrame({"account_id": ["b"], "anomaly_score": [0.99]})
    m = account_matrix(scored, features, signals, anomaly)
    row = {r["account_id"]: r for r in m.iter_rows(named=True)}
    assert row["a"]["in_count@7d"] == 9 and row["a"]["in_count@30d"] is None
    assert row["a"]["signal:r1"] == 0.7 and row["b"]["signal:r1"] is None
    assert row["b"]["anomaly:anomaly_score"] == 0.99
    assert "risk_score" not in " ".join(m.columns)  # the blend adds today's risk, not the model
