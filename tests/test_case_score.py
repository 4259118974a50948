"""The case score (issue 14, item 4): within [0, 1], distinct at the head of the queue, never
lower for more evidence, and explained in one sentence."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows87.cli import EXIT_OK, main
from flows87.io import write_parquet
from flows87.pipeline.cases import ScoringSettings, account_risk, build, links
from flows87.pipeline.cases.case_score import (
    CaseEvidence,
    CaseScoreSettings,
    money_reference,
    signal_name,
)
from flows87.pipeline.rules import SIGNAL_SCHEMA
from flows87.pipeline.stages.cases import scored_accounts
from flows87.research.synth import generate
from tests.test_cases import sig, transactions

SETTINGS = ScoringSettings()
FAMILIES = ["behaviour", "network", "identity", "anomaly"]
SOURCE = {"behaviour": "rule", "network": "graph", "identity": "graph", "anomaly": "detector"}


@st.composite
def signal_sets(draw: st.DrawFn) -> list[dict]:
    accounts = [f"a{i}" for i in range(draw(st.integers(1, 6)))]
    rows = []
    for i in range(draw(st.integers(1, 30))):
        family = draw(st.sampled_from(FAMILIES))
        source = SOURCE[family]
        rows.append(
            sig(
                source,
                f"s{i % 5}",
                draw(st.sampled_from(accounts)),
                family,
                draw(st.floats(0.0, 1.0)),
                ["t"] if source != "detector" else [],
                # every network signal in one instance: the accounts form cases
                "hub:1" if family == "network" else None,
                [f"t{draw(st.integers(0, 4))}"],
            )
        )
    return rows


@given(signal_sets(), st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_account_and_case_scores_stay_within_0_and_1(
    rows: list[dict], anomaly: list[float]
) -> None:
    signals = pl.DataFrame(rows, schema=SIGNAL_SCHEMA)
    tx = transactions([(f"a{i}", f"a{(i + 1) % 6}", 10.0**i) for i in range(5)])
    found = links(signals, tx)
    risk = account_risk(signals, found, SETTINGS)
    assert risk["risk_score"].is_between(0.0, 1.0).all()
    assert (risk["evidence"] >= 0).all()
    # the evidence is the same risk, in a scale that does not saturate
    assert (1.0 - (-risk["evidence"]).exp() - risk["risk_score"]).abs().max() < 1e-9
    cases = build(risk, signals, found, tx, SETTINGS).cases
    assert cases["risk_score"].is_between(0.0, 1.0).all()
    assert cases["risk_score"].is_sorted(descending=True)
    membership = pl.DataFrame(
        [(a, c) for c, accs in cases.select("case_id", "accounts").iter_rows() for a in accs],
        schema={"account_id": pl.String, "case_id": pl.String},
        orient="row",
    )
    ids = [f"a{i}" for i in range(6)]
    scores = pl.DataFrame(
        {"account_id": ids, "anomaly_score": anomaly, "anomaly_risk": anomaly},
    )
    scored = scored_accounts(pl.DataFrame({"account_id": ids}), tx, risk, membership, scores, 0.3)
    assert scored["risk_score"].is_between(0.0, 1.0).all()


PARTS = st.builds(
    CaseEvidence,
    n_flagged=st.integers(1, 10_000),
    families=st.sets(st.sampled_from(["behaviour", "identity", "network"])).map(
        lambda s: tuple(sorted(s))
    ),
    strongest_risk=st.just(0.0),
    strongest_evidence=st.floats(0.0, 200.0),
    strongest_signals=st.just(()),
    moved=st.just(0.0),
    money_ratio=st.floats(0.0, 1e9),
)
WEIGHTS = st.builds(
    CaseScoreSettings,
    strongest=st.floats(0.0, 10.0),
    accounts=st.floats(0.0, 10.0),
    families=st.floats(0.0, 10.0),
    money=st.floats(0.0, 10.0),
    half=st.floats(0.1, 100.0),
)


@given(PARTS, WEIGHTS)
def test_more_evidence_never_lowers_a_case(parts: CaseEvidence, w: CaseScoreSettings) -> None:
    score = parts.score(w)
    assert 0.0 <= score < 1.0
    fams = tuple(sorted(set(parts.families) | {"identity"}))
    more = [
        replace(parts, n_flagged=parts.n_flagged + 1),
        replace(parts, families=fams),
        replace(parts, strongest_evidence=parts.strongest_evidence + 1.0),
        replace(parts, money_ratio=parts.money_ratio * 2 + 1),
    ]
    assert all(m.score(w) >= score for m in more)


def _hub_case(extra: list[dict]) -> pl.DataFrame:
    """A controller hub with two victims, plus `extra` signals; its one case."""
    rows = [
        sig("graph", "ht_controller_hub", a, "network", 0.9, ["sex_trafficking"], "hub:1", ["t0"])
        for a in ("v1", "v2", "c")
    ]
    rows += [
        sig("rule", "ht_hotel_pattern", a, "behaviour", 0.75, ["sex_trafficking"])
        for a in ("v1", "c")
    ]
    signals = pl.DataFrame(rows + extra, schema=SIGNAL_SCHEMA)
    tx = transactions([("v1", "c", 300), ("v2", "c", 280), ("v3", "c", 250)])
    found = links(signals, tx)
    cases = build(account_risk(signals, found, SETTINGS), signals, found, tx, SETTINGS, "USD")
    assert cases.cases.height == 1
    return cases.cases


def test_one_more_flagged_account_or_family_scores_the_case_higher() -> None:
    base = _hub_case([]).row(0, named=True)
    # v2 corroborated by a behaviour signal: one more flagged account, the same families
    account = _hub_case(
        [sig("rule", "ht_hotel_pattern", "v2", "behaviour", 0.75, ["sex_trafficking"])]
    ).row(0, named=True)
    assert account["risk_accounts"] == base["risk_accounts"] + 1
    assert account["risk_families"] == base["risk_families"]
    assert account["risk_score"] > base["risk_score"]
    # a weak identity signal on c, already flagged: a third family, the same accounts
    family = _hub_case(
        [sig("graph", "id_shared_identifiers", "c", "identity", 0.25, ["sex_trafficking"])]
    ).row(0, named=True)
    assert family["risk_families"] == base["risk_families"] + 1
    assert family["risk_accounts"] == base["risk_accounts"]
    assert family["risk_score"] > base["risk_score"]
    # v2 is in the case (the hub's instance) without being flagged itself
    assert base["n_accounts"] == 3 and base["risk_accounts"] == 2


def test_the_reason_names_the_parts() -> None:
    case = _hub_case([]).row(0, named=True)
    reason = case["risk_reason"]
    assert reason.startswith("2 accounts flagged in 2 families (behaviour, network); ")
    assert (
        f"strongest account {case['risk_strongest']:.2f} (controller hub, hotel pattern)" in reason
    )
    assert "300 USD moved" in reason  # t0, the hub's evidence transaction
    assert case["risk_money"] > 0 and f"{case['risk_money']:.1f}x what the median" in reason
    assert reason.count(";") == 2 and "\n" not in reason


def test_signal_names_and_money_reference() -> None:
    assert signal_name("ml_fan_in", "graph") == "fan in"
    assert signal_name("pyod_ensemble", "detector") == "anomaly"
    assert signal_name("structuring", "rule") == "structuring"
    tx = transactions([("a", "b", 10.0), ("a", "c", 30.0), ("b", "c", 100.0), ("c", "a", 1.0)])
    assert money_reference(tx) == 40.0  # a sent 40, b 100, c 1: the median account's 40
    assert money_reference(tx.clear()) == 1.0
    ev = CaseEvidence(1, (), 0.0, 0.0, (), 0.0, 0.0)
    assert ev.evidence(CaseScoreSettings()) == 0.0 and ev.score(CaseScoreSettings()) == 0.0
    assert "in no family of red flags" in ev.reason()
    w = CaseScoreSettings(half=10.0)
    assert replace(ev, strongest_evidence=10.0).score(w) == pytest.approx(0.5)
    assert replace(ev, strongest_evidence=100.0).score(w) == pytest.approx(100 / 110)
    assert math.isfinite(replace(ev, money_ratio=1e300).score(w))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("case-score")
    data = generate(12_000, 30, seed=11)
    write_parquet(data.accounts, base / "data" / "accounts.parquet")
    write_parquet(data.transactions, base / "data" / "transactions.parquet")
    assert main(["run", str(base / "data"), "--out", str(base / "run"), "--quiet"]) == EXIT_OK
    return base / "run"


def test_a_generated_run_ranks_its_top_cases_apart(run_dir: Path) -> None:
    cases = pl.read_parquet(run_dir / "cases.parquet")
    top = cases.head(100)
    assert top.height >= 15
    # distinct scores (before issue 14: most of the top tied at 1.0)
    assert top["risk_score"].n_unique() >= 0.95 * top.height
    assert cases["risk_score"].is_between(0.0, 1.0).all()
    assert (cases["risk_score"] < 0.999).all()  # not saturated
    assert cases["rank"].to_list() == list(range(1, cases.height + 1))
    assert cases["risk_score"].is_sorted(descending=True)
    for row in top.iter_rows(named=True):
        assert row["risk_reason"].startswith(f"{row['risk_accounts']} account")
        assert f"in {row['risk_families']} famil" in row["risk_reason"]
        assert f"strongest account {row['risk_strongest']:.2f}" in row["risk_reason"]
        assert f"{row['total_amount']:,.0f} USD moved" in row["risk_reason"]
    scored = pl.read_parquet(run_dir / "accounts_scored.parquet")
    assert scored["risk_score"].is_between(0.0, 1.0).all()  # up to 1.001 before
