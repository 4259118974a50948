"""flows87.research.evaluate: metrics against hand-computed values on a 10-account case, properties
(hypothesis), and `flows87 evaluate` on a real labelled run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from evaluation_data import hand_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows87.cli import EXIT_OK, EXIT_USER, main
from flows87.research.evaluate import (
    alerted_transactions,
    alerts_per_day,
    average_precision,
    classification_metrics,
    contributions,
    disposition_metrics,
    overlap,
    pr_curve,
    precision_at_k,
    ranking_metrics,
    recall_at_budget,
    transaction_metrics,
)
from flows87.research.evaluate.evaluation import evaluate_run, parse_budgets, typology_level
from flows87.research.evaluate.ranking import score_comparison

H = hand_case()


@pytest.fixture(scope="module")
def run_dir(labelled_run: Path) -> Path:
    return labelled_run


# --- hand-computed: 10 accounts, 3 suspicious (A0 rank 1, A2 rank 3, A5 rank 6) ---------------


def test_alerted_accounts_precision_recall_f1() -> None:
    m = classification_metrics(H["scored"], pl.col("case_id").is_not_null())
    # in a case: A0 (suspicious), A1 (not), A2 (suspicious); A5 missed
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 6)
    assert m["precision"] == m["recall"] == m["f1"] == pytest.approx(0.6667)
    assert m["alert_rate"] == 0.3


def test_ranking_metrics_by_hand() -> None:
    # AP = (1/1 + 2/3 + 3/6) / 3
    assert average_precision(
        H["scored"]["is_suspicious"], H["scored"]["risk_score"]
    ) == pytest.approx((1 + 2 / 3 + 0.5) / 3, abs=1e-6)
    assert precision_at_k(H["scored"], 1) == 1.0
    assert precision_at_k(H["scored"], 3) == pytest.approx(0.6667)
    assert precision_at_k(H["scored"], 5) == 0.4
    assert recall_at_budget(H["scored"], 0.1) == pytest.approx(0.3333)  # top 1
    assert recall_at_budget(H["scored"], 0.3) == pytest.approx(0.6667)  # top 3
    assert recall_at_budget(H["scored"], 0.5) == pytest.approx(0.6667)  # top 5
    assert recall_at_budget(H["scored"], 0.6) == 1.0  # top 6
    m = ranking_metrics(H["scored"], budgets=(0.1, 0.3), ks=(1, 5))
    assert m["positives"] == 3
    assert m["recall_at_budget"] == {"10.0%": 0.3333, "30.0%": 0.6667}
    assert m["precision_at_budget"] == {"10.0%": 1.0, "30.0%": 0.6667}
    assert m["precision_at_k"] == {"1": 1.0, "5": 0.4}


def test_average_precision_takes_ties_as_one_threshold() -> None:
    # scores 1, 1, 0 with labels T, F, T: P=1/2 at R=1/2, then P=2/3 at R=1 -> 0.25 + 1/3
    assert average_precision([True, False, True], [1.0, 1.0, 0.0]) == pytest.approx(
        0.583333, abs=1e-6
    )
    assert average_precision([False, False], [0.3, 0.2]) is None
    # null scores rank last, all at one threshold (like sklearn with the lowest score)
    assert average_precision([True, False, True, False], [1.0, None, float("nan"), 0.5]) == 0.75
    curve = pr_curve([True, False, True], [1.0, 1.0, 0.0])
    assert curve["recall"].to_list() == [0.5, 1.0]
    assert curve["precision"].to_list() == pytest.approx([0.5, 2 / 3])


def test_each_score_alone() -> None:
    frame = H["scored"].with_columns((1 - pl.col("risk_score")).alias("reversed"))
    got = {
        s["score"]: s for s in score_comparison(frame, ["risk_score", "reversed"], budgets=(0.1,))
    }
    assert got["risk_score"]["recall_at_budget"] == {"10.0%": 0.3333}
    # reversed: A9 first ... A5 at rank 5, A2 at 8, A0 at 10 -> (1/5 + 2/8 + 3/10) / 3
    assert got["reversed"]["average_precision"] == pytest.approx((0.2 + 0.25 + 0.3) / 3, abs=1e-6)


def test_per_rule_contribution_alone_and_only_it() -> None:
    c = {r["signal_id"]: r for r in contributions(H["signals"], H["scored"]).iter_rows(named=True)}
    # r1 flags A0 A1 A3: one suspicious; A1 and A3 only by r1, neither suspicious
    assert (c["r1"]["accounts"], c["r1"]["tp"], c["r1"]["precision"], c["r1"]["recall"]) == (
        3,
        1,
        pytest.approx(0.3333),
        pytest.approx(0.3333),
    )
    assert (c["r1"]["only_accounts"], c["r1"]["only_tp"], c["r1"]["only_recall"]) == (2, 0, 0.0)
    # r2 flags A0 A2, both suspicious; only r2 catches A2
    assert (c["r2"]["precision"], c["r2"]["recall"], c["r2"]["f1"]) == (
        1.0,
        pytest.approx(0.6667),
        0.8,
    )
    assert (c["r2"]["only_accounts"], c["r2"]["only_tp"], c["r2"]["only_recall"]) == (
        1,
        1,
        pytest.approx(0.3333),
    )
    # the detector flags A5 (suspicious, nobody else) and A6
    assert (c["d1"]["precision"], c["d1"]["f1"], c["d1"]["only_tp"]) == (0.5, 0.4, 1)
    by_source = {
        r["source"]: r
        for r in contributions(H["signals"], H["scored"], by=("source",)).iter_rows(named=True)
    }
    assert (
        by_source["rule"]["accounts"],
        by_source["rule"]["tp"],
        by_source["rule"]["only_tp"],
    ) == (4, 2, 2)
    assert (by_source["detector"]["accounts"], by_source["detector"]["only_tp"]) == (2, 1)


def test_rule_overlap_jaccard() -> None:
    j = {(r["a"], r["b"]): r["jaccard"] for r in overlap(H["signals"]).iter_rows(named=True)}
    assert j[("r1", "r2")] == j[("r2", "r1")] == 0.25  # {A0} of {A0, A1, A2, A3}
    assert j[("r1", "d1")] == 0.0
    assert j[("r1", "r1")] == 1.0
    assert len(j) == 9


def test_transaction_level_by_hand() -> None:
    tx = alerted_transactions(H["transactions"], H["signals"], H["cases"], H["scored"])
    got = dict(zip(tx["txn_id"], tx["alerted"], strict=True))
    # T1 inside case C1; T2, T4, T5 are signal evidence; T3 and T6 are not alerted
    assert got == {"T1": True, "T2": True, "T3": False, "T4": True, "T5": True, "T6": False}
    assert dict(zip(tx["txn_id"], tx["score"], strict=True))["T4"] == 0.95  # max of A5, A0
    m = transaction_metrics(
        H["transactions"], H["signals"], H["cases"], H["scored"], budgets=(0.5,)
    )
    assert (m["tp"], m["fp"], m["fn"]) == (3, 1, 1)
    assert m["precision"] == m["recall"] == m["f1"] == 0.75
    # ranked T1 .95 T, T4 .95 T (tie), T5 .9 F, T2 .8 T, T3 .7 F, T6 .5 T
    assert m["ranking"]["average_precision"] == pytest.approx(
        0.5 + 0.25 * 0.75 + 0.25 * 4 / 6, abs=1e-6
    )
    assert m["ranking"]["recall_at_budget"] == {"50.0%": 0.5}  # top 3: T1, T4, T5
    assert m["typologies"]["sex"] == {
        "transactions": 3,
        "recall": 0.6667,
        "recall_via_signal": 0.3333,
    }
    assert m["via_case"]["tp"] == 1


def test_alerts_per_day_by_hand() -> None:
    per_day = alerts_per_day(H["signals"], H["cases"], H["transactions"])
    assert [(str(d), s, a, c) for d, s, a, c in per_day.iter_rows()] == [
        ("2026-01-01", 3, 3, 1),
        ("2026-01-02", 2, 2, 0),
        ("2026-01-03", 0, 0, 1),
        ("2026-01-04", 1, 1, 0),  # the detector's signal dated by its evidence T4
    ]


def test_per_typology_by_hand() -> None:
    t = typology_level(H["scored"], H["signals"], budgets=(0.1,))
    assert t["sex"]["recall"] == 0.5 and t["sex"]["recall_signalled"] == 1.0
    assert t["sex"]["recall_at_budget"] == {"10.0%": 0.5}
    assert t["sex"]["average_precision"] == pytest.approx(0.7)  # A0 at 1, A5 at 5 of 9
    assert t["labour"]["recall"] == 1.0 and t["labour"]["recall_at_budget"] == {"10.0%": 0.0}


def test_disposition_metrics_by_hand() -> None:
    d = disposition_metrics(H["dispositions"], H["scored"], H["cases"])
    assert d["decided_cases"] == 2 and d["precision"] == 0.5
    assert d["by_disposition"] == {"false_positive": 1, "reported": 1}
    assert d["rules"]["r1"]["precision"] == 1.0 and d["rules"]["r2"]["precision"] == 0.5
    assert d["run_cases_decided"] == 2
    assert d["average_precision_reviewed"] == 1.0  # A0, A1 reported above A2
    assert d["label_agreement"] == pytest.approx(0.3333)  # only A0 agrees


def test_parse_budgets() -> None:
    assert parse_budgets(["0.01", "0.005,0.02"]) == (0.005, 0.01, 0.02)
    assert parse_budgets("1% 2%") == (0.01, 0.02)
    assert parse_budgets([0.01]) == (0.01,)
    assert parse_budgets(None) == (0.005, 0.01, 0.02)
    for bad in ("0", "2", "x"):
        with pytest.raises(Exception, match="budget"):
            parse_budgets(bad)


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=40,
    ),
    st.floats(0.001, 1.0),
)
def test_metrics_stay_in_unit_interval(rows: list[tuple[float, bool, bool]], budget: float) -> None:
    from sklearn.metrics import average_precision_score

    frame = pl.DataFrame(
        {
            "account_id": [f"A{i:03d}" for i in range(len(rows))],
            "risk_score": [r[0] for r in rows],
            "is_suspicious": [r[1] for r in rows],
            "flag": [r[2] for r in rows],
        }
    )
    m = ranking_metrics(frame, budgets=(budget, 1.0), ks=(1, 5))
    values = [
        m["average_precision"],
        *m["precision_at_k"].values(),
        *m["recall_at_budget"].values(),
        *m["precision_at_budget"].values(),
    ]
    c = classification_metrics(frame, "flag")
    values += [c["precision"], c["recall"], c["f1"], c["alert_rate"]]
    assert all(v is None or 0.0 <= v <= 1.0 for v in values)
    if m["positives"]:
        assert m["recall_at_budget"]["100.0%"] == 1.0
        expected = average_precision_score(
            np.array(frame["is_suspicious"]), np.array(frame["risk_score"])
        )
        assert m["average_precision"] == pytest.approx(expected, abs=1e-5)
    else:
        assert m["average_precision"] is None and m["recall_at_budget"]["100.0%"] is None
    signals = frame.filter("flag").select(
        pl.lit("rule").alias("source"),
        pl.when(pl.col("risk_score") > 0.5)
        .then(pl.lit("hi"))
        .otherwise(pl.lit("lo"))
        .alias("signal_id"),
        "account_id",
    )
    contrib = contributions(signals, frame)
    for col in ("precision", "recall", "f1", "only_recall"):
        assert contrib[col].drop_nulls().is_between(0, 1).all()
    assert overlap(signals)["jaccard"].drop_nulls().is_between(0, 1).all()


# --- a real run --------------------------------------------------------------------------------


def test_evaluate_command_writes_the_report(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            str(run_dir),
            "--out",
            str(out),
            "--budgets",
            "0.005",
            "0.01",
            "0.05",
            "--db",
            str(tmp_path / "no-store.db"),
            "--json",
        ]
    )
    assert code == EXIT_OK
    head = json.loads(capsys.readouterr().out)
    assert set(head["recall_at_budget"]) == {"0.5%", "1.0%", "5.0%"}
    assert not (tmp_path / "no-store.db").exists()  # a missing store is skipped, not created
    for name in (
        "evaluation.json",
        "evaluation.md",
        "evaluation.html",
        "pr_curve.png",
        "recall_vs_budget.png",
        "typology_recall.png",
        "rule_overlap.png",
        "alerts_per_day.png",
    ):
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ev = json.loads((out / "evaluation.json").read_text())
    acc = ev["account_level"]
    assert 0 < acc["average_precision"] <= 1 and acc["average_precision"] == head["pr_auc"]
    # consistent with the run report's own metrics
    report = json.loads((run_dir / "metrics.json").read_text())["accounts"]
    assert acc["alerted"]["precision"] == report["precision"]
    assert acc["alerted"]["recall"] == report["recall"]
    assert acc["recall_at_budget"]["1.0%"] == report["recall_at_budget"]["1.0%"]
    assert set(ev["typologies"]) == {t for t in report["typologies"]}
    assert [s["score"] for s in ev["scores"]][:3] == ["risk_score", "signal_risk", "anomaly_score"]
    assert ev["scores"][0]["average_precision"] == acc["average_precision"]
    assert ev["transaction_level"]["positives"] > 0 and ev["transaction_level"]["recall"] > 0
    sources = {r["source"] for r in ev["sources_contribution"]}
    assert "rule" in sources and "graph" in sources
    assert len(ev["rule_overlap"]["signals"]) == len(ev["rule_overlap"]["jaccard"])
    assert ev["alert_volume"]["signals"] + ev["alert_volume"]["undated_signals"] == ev["signals"]
    html = (out / "evaluation.html").read_text()
    assert "<img src='pr_curve.png'" in html and "Per typology" in html
    assert "![Rule overlap](rule_overlap.png)" in (out / "evaluation.md").read_text()


def test_evaluate_without_labels_is_a_clear_error(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("signals.parquet", "cases.parquet"):
        shutil.copy(run_dir / name, bare / name)
    pl.read_parquet(run_dir / "accounts_scored.parquet").drop(
        "is_suspicious", "typology"
    ).write_parquet(bare / "accounts_scored.parquet")
    code = main(["evaluate", str(bare), "--db", str(tmp_path / "none.db")])
    assert code == EXIT_USER
    assert "no labels" in capsys.readouterr().err
    assert not (bare / "evaluation").exists()
    # with dispositions it evaluates against them alone
    scored = pl.read_parquet(bare / "accounts_scored.parquet")
    cases = pl.read_parquet(bare / "cases.parquet").head(2)
    disp = cases.select("case_id", "accounts", "signal_ids", "typologies").with_columns(
        pl.Series("disposition", ["reported", "false_positive"])
    )
    ev = evaluate_run(bare, dispositions=disp)
    assert ev["labelled"] is False and "account_level" not in ev
    assert ev["dispositions"]["precision"] == 0.5 and ev["dispositions"]["run_cases_decided"] == 2
    assert (
        ev["dispositions"]["decided_accounts"]
        == scored.filter(pl.col("case_id").is_in(cases["case_id"].implode())).height
    )


def test_evaluate_reads_dispositions_from_the_case_store(run_dir: Path, tmp_path: Path) -> None:
    from flows87.investigate.store import Store, create_user, load_run
    from flows87.investigate.store.workflow import (
        assign,
        change_status,
        close_case,
        decide_report,
        request_report,
    )

    store = Store.open(tmp_path / "cases.db")
    store.upgrade()
    try:
        with store.session() as s:
            ivy = create_user(s, "ivy", "investigator", "ivy-password-1")
            sam = create_user(s, "sam", "supervisor", "sam-password-1")
            load_run(s, run_dir, "2026-01-07")
        cases = pl.read_parquet(run_dir / "cases.parquet").sort("rank")
        first, second = cases["case_id"][0], cases["case_id"][1]
        with store.session() as s:
            for case_id in (first, second):
                assign(s, ivy, case_id, "ivy")
                change_status(s, ivy, case_id, "in_review")
            close_case(s, ivy, second, "false_positive", "payroll, nothing there")
            request_report(s, ivy, first, "wage recapture, see notes")
            decide_report(s, sam, first, True)
    finally:
        store.dispose()
    ev = evaluate_run(run_dir, db_url=str(tmp_path / "cases.db"))
    d = ev["dispositions"]
    assert d["by_disposition"] == {"false_positive": 1, "reported": 1}
    assert d["precision"] == 0.5 and d["run_cases_decided"] == 2
    assert "label_agreement" in d
