"""The learned scorer in the case store (issue 16): migration 0006 over an existing 0005
database, and the loader's learned columns (SQLite and a real PostgreSQL, tests/postgres.py)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from postgres import make_run
from sqlalchemy import inspect, select

from flows87.investigate.store import Store, head_revision, load_run, verify_audit
from flows87.investigate.store.learned import case_model
from flows87.investigate.store.models import Case, LearnedModel

AUDIT_KEY = "test-audit-key-for-the-store-tests-0123456789"
META = {
    "method": "xgboost",
    "columns": ["signal:ml_fan_in", "out_sum@30d"],
    "positives": 57,
    "negatives": 155,
    "labelled": 212,
    "cutoff": "2026-03-01T00:00:00+00:00",
    "version": "0123456789abcdef",
    "file": "model.json",
}
LEARNED = {"C-aaa": 0.8, "C-bbb": 0.1, "C-ccc": None}


@pytest.fixture(autouse=True)
def audit_key(monkeypatch):
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.delenv("FLOWS87_AUDIT_KEY_FILE", raising=False)


def add_model(run: Path, learned: dict[str, float | None] = LEARNED, version: str = "") -> Path:
    """The run's cases as the learn stage leaves them: blended risk, today's, learned, reasons;
    the model's description in learning/model/."""
    cases = pl.read_parquet(run / "cases.parquet")
    if "today_score" in cases.columns:  # blended before: start again from today's risk
        cases = cases.with_columns(pl.col("today_score").alias("risk_score"))
    cases = cases.drop("today_score", "learned_score", "learned_reasons", strict=False)
    score = pl.col("case_id").replace_strict(learned, default=None, return_dtype=pl.Float64)
    reasons = pl.when(score.is_not_null()).then(
        pl.concat_list(
            pl.lit("signal ml_fan_in 0.9 (+1.20)"), pl.lit("out sum (30d) 3.6e+04 (+0.40)")
        )
    )
    cases = cases.with_columns(
        pl.col("risk_score").alias("today_score"),
        score.alias("learned_score"),
        reasons.alias("learned_reasons"),
    ).with_columns(
        pl.when(score.is_not_null())
        .then(0.5 * pl.col("today_score") + 0.5 * score)
        .otherwise(pl.col("today_score"))
        .alias("risk_score")
    )
    cases.write_parquet(run / "cases.parquet")
    folder = run / "learning" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {**META, "version": version or META["version"]}
    (folder / "model.meta.json").write_text(json.dumps(meta))
    return run


def _columns(store: Store, table: str) -> set[str]:
    return {c["name"] for c in inspect(store.engine).get_columns(table)}


def test_migration_0006_upgrades_a_0005_store_with_cases(backend, tmp_path):
    st = Store.open(backend)
    try:
        st.upgrade("0005")
        assert "learned_score" not in _columns(st, "cases")
        with st.session() as s:  # a store in use: cases loaded before the learned scorer
            assert load_run(s, make_run(tmp_path / "run"), "2026-01-01").new == 3
        st.upgrade()
        assert st.current_revision() == head_revision()
        assert {"learned_score", "today_score", "learned_reasons", "model_version"} <= _columns(
            st, "cases"
        )
        with st.session() as s:
            kept = s.get(Case, "C-aaa")
            assert kept is not None and kept.risk_score == 0.9 and kept.learned_score is None
            assert case_model(s, "C-aaa") is None
            # the same run again changes nothing: the fingerprints did not move
            assert load_run(s, tmp_path / "run", "2026-01-01").unchanged == 3
        with st.session() as s:
            again = load_run(s, add_model(tmp_path / "run"), "2026-01-02")
            # every case of a run with a model gains today's score (C-ccc: no learned score)
            assert (again.updated, again.unchanged) == (3, 0)
            assert s.get(Case, "C-aaa").model_version == META["version"]
            assert verify_audit(s) is None
        st.downgrade("0005")
        assert "learned_score" not in _columns(st, "cases")
        assert "learned_models" not in inspect(st.engine).get_table_names()
        with st.session() as s:
            assert s.scalar(
                select(Case.risk_score).where(Case.case_id == "C-aaa")
            ) == pytest.approx(0.85)
    finally:
        st.dispose()


def test_learned_columns_are_loaded_and_a_change_updates_the_case(store, tmp_path):
    run = add_model(make_run(tmp_path / "run"))
    with store.session() as s:
        load_run(s, run, "2026-01-01")
        aaa, ccc = s.get(Case, "C-aaa"), s.get(Case, "C-ccc")
        assert (aaa.today_score, aaa.learned_score, aaa.risk_score) == pytest.approx(
            (0.9, 0.8, 0.85)
        )
        assert json.loads(aaa.learned_reasons)[0] == "signal ml_fan_in 0.9 (+1.20)"
        assert (ccc.learned_score, ccc.learned_reasons, ccc.model_version) == (None, None, None)
        model = s.get(LearnedModel, META["version"])
        assert (model.positives, model.negatives, model.labelled) == (57, 155, 212)
        assert model.cutoff == META["cutoff"] and "columns" not in json.loads(model.meta)
        found = case_model(s, "C-aaa")
        assert found is not None and found["model"]["labelled"] == 212
    with store.session() as s:
        assert load_run(s, run, "2026-01-01").unchanged == 3
    # the learned score alone moves: the case's evidence changed, like a change of risk
    add_model(run, {**LEARNED, "C-aaa": 0.6})
    with store.session() as s:
        again = load_run(s, run, "2026-01-02")
        assert again.updated_case_ids == ["C-aaa"] and again.updated == 1
        assert s.get(Case, "C-aaa").learned_score == 0.6
    # another model, same scores: the cases it scored are updated and name it
    add_model(run, {**LEARNED, "C-aaa": 0.6}, version="fedcba9876543210")
    with store.session() as s:
        again = load_run(s, run, "2026-01-03")
        assert sorted(again.updated_case_ids) == ["C-aaa", "C-bbb"]
        assert s.get(Case, "C-bbb").model_version == "fedcba9876543210"
        assert s.get(LearnedModel, "fedcba9876543210") is not None
    # a later run without a model clears what the earlier one wrote
    make_run(run)
    (run / "learning" / "model" / "model.meta.json").unlink()
    with store.session() as s:
        load_run(s, run, "2026-01-04")
        aaa = s.get(Case, "C-aaa")
        assert (aaa.learned_score, aaa.today_score, aaa.model_version) == (None, None, None)
        assert aaa.risk_score == 0.9 and case_model(s, "C-aaa") is None
        assert verify_audit(s) is None


def test_a_run_with_null_learned_columns_loads_as_one_without(store, tmp_path):
    plain = make_run(tmp_path / "plain")
    nulls = add_model(make_run(tmp_path / "nulls"), dict.fromkeys(LEARNED))
    with store.session() as s:
        load_run(s, plain, "2026-01-01")
        assert load_run(s, nulls, "2026-01-01").unchanged == 3
        assert s.get(Case, "C-aaa").model_version is None
