"""The account ranking behind "recall at budget": cases first, then accounts in no case by the
noisy-OR of their uncorroborated signal risk and the anomaly detectors' ranking weight."""

from __future__ import annotations

import polars as pl
import pytest

from flows87.pipeline.stages.cases import scored_accounts

FACTOR = 0.3


def tb(risk: float, anomaly_score: float = 0.0) -> float:
    """risk_score of an account: its risk, ties broken by the anomaly score, within [0, 1]."""
    return (risk + 0.001 * anomaly_score) / 1.001


def rank(anomaly: pl.DataFrame | None) -> tuple[list[str], pl.DataFrame]:
    accounts = pl.DataFrame({"account_id": ["case", "weak", "odd", "both", "quiet"]})
    tx = pl.DataFrame(
        {"src_account": ["case"], "dst_account": ["quiet"]},
        schema={"src_account": pl.String, "dst_account": pl.String},
    )
    risk = pl.DataFrame(
        {
            "account_id": ["case", "weak", "both"],
            "risk_score": [0.6, 0.9, 0.5],
            "families": [["behaviour", "network"], ["behaviour"], ["behaviour"]],
            "n_signals": [2, 1, 1],
            "eligible": [True, False, False],
        }
    )
    membership = pl.DataFrame({"account_id": ["case"], "case_id": ["C-1"]})
    scored = scored_accounts(accounts, tx, risk, membership, anomaly, FACTOR)
    return scored["account_id"].to_list(), scored


def test_a_strong_anomaly_outranks_a_weak_uncorroborated_signal() -> None:
    anomaly = pl.DataFrame(
        {
            "account_id": ["odd", "both", "weak", "quiet"],
            "anomaly_score": [0.99, 0.95, 0.2, 0.1],
            "anomaly_risk": [0.45, 0.4, 0.0, 0.0],
        }
    )
    order, scored = rank(anomaly)
    assert order == ["case", "both", "odd", "weak", "quiet"]
    got = dict(zip(scored["account_id"], scored["risk_score"], strict=True))
    assert got["odd"] == pytest.approx(tb(0.45, 0.99))
    assert got["weak"] == pytest.approx(tb(FACTOR * 0.9, 0.2))
    assert got["both"] == pytest.approx(tb(1 - (1 - FACTOR * 0.5) * (1 - 0.4), 0.95))
    assert got["case"] == pytest.approx(tb(0.6))  # in a case: its signal risk, no anomaly weight


def test_scores_without_a_ranking_weight_only_break_ties() -> None:
    anomaly = pl.DataFrame(
        {"account_id": ["odd", "weak"], "anomaly_score": [0.99, 0.2]}
    )  # an older run's anomaly_scores.parquet
    order, scored = rank(anomaly)
    assert order[:3] == ["case", "weak", "both"]
    assert scored.filter(pl.col("account_id") == "odd")["risk_score"].item() < 0.01
    assert rank(None)[0][:3] == ["case", "weak", "both"]


def test_risk_stays_within_0_and_1_and_the_tiebreak_reorders_no_clear_difference() -> None:
    """Saturated signal risk plus the anomaly tie-break used to give 1.001 (issue 14)."""
    accounts = pl.DataFrame({"account_id": ["top", "next", "close", "calm"]})
    tx = pl.DataFrame(schema={"src_account": pl.String, "dst_account": pl.String})
    risk = pl.DataFrame(
        {
            "account_id": ["top", "next", "close"],
            # "next" is 0.0011 below "top", more than the tie-break: it stays below whatever
            # the anomaly scores; "close" is 0.0005 below "next": the anomaly score decides
            "risk_score": [1.0, 0.9989, 0.9984],
            "families": [["behaviour", "network"]] * 3,
            "n_signals": [3, 3, 3],
            "eligible": [True, True, True],
        }
    )
    membership = pl.DataFrame(
        {"account_id": ["top", "next", "close"], "case_id": ["C-1", "C-1", "C-1"]}
    )
    anomaly = pl.DataFrame(
        {
            "account_id": ["top", "next", "close", "calm"],
            "anomaly_score": [1.0, 0.2, 1.0, 1.0],
            "anomaly_risk": [0.0, 0.0, 0.0, 0.3],
        }
    )
    scored = scored_accounts(accounts, tx, risk, membership, anomaly, FACTOR)
    assert scored["account_id"].to_list() == ["top", "close", "next", "calm"]
    assert scored["risk_score"].max() <= 1.0 and scored["risk_score"].min() >= 0.0
    got = dict(zip(scored["account_id"], scored["risk_score"], strict=True))
    assert got["top"] == pytest.approx(1.0)  # was 1.001
    assert got["calm"] == pytest.approx(tb(0.3, 1.0))


def test_one_off_counterparties_of_an_unusual_account_rank_up_but_not_through_a_hub() -> None:
    from flows87.pipeline.stages.cases import one_off_neighbours

    # "hub" is among the most unusual accounts; "m1" paid it once, "m2" three times (a
    # relationship, not a one-off); "shop" is paid once by each of 200 accounts (infrastructure
    # at 1 %: it met over 1 % of everyone) and is unusual too, so its customers gain nothing.
    src = ["m1", "m2", "m2", "m2", *[f"c{i}" for i in range(200)], "m1"]
    dst = ["hub", "hub", "hub", "hub", *["shop"] * 200, "m1"]
    tx = pl.DataFrame({"src_account": src, "dst_account": dst})
    anomaly = pl.DataFrame(
        {
            "account_id": ["hub", "shop", "m1", "m2", "c0"],
            "anomaly_score": [0.99, 0.98, 0.3, 0.3, 0.2],
            "anomaly_risk": [0.45, 0.4, 0.2, 0.0, 0.0],
        }
    )
    nb = dict(one_off_neighbours(tx, anomaly.head(2), 0.01).iter_rows())
    assert nb == pytest.approx({"m1": 0.45})  # m2 met the hub thrice, c0 only infrastructure
    assert one_off_neighbours(tx, anomaly.head(2), 1.0).height == 201  # no infrastructure cut
    accounts = pl.DataFrame({"account_id": sorted(set(src) | set(dst))})
    # the detectors flagged hub and shop (anomaly family); m1's anomaly_risk passes nowhere
    risk = pl.DataFrame(
        {
            "account_id": ["hub", "shop"],
            "risk_score": [0.12, 0.12],
            "families": [["anomaly"], ["anomaly"]],
            "n_signals": [1, 1],
            "eligible": [False, False],
        }
    )
    none = pl.DataFrame(schema={"account_id": pl.String, "case_id": pl.String})
    scored = scored_accounts(accounts, tx, risk, none, anomaly, FACTOR, neighbour_share=0.5)
    got = dict(zip(scored["account_id"], scored["risk_score"], strict=True))
    assert got["m1"] == pytest.approx(tb(1 - (1 - 0.2) * (1 - 0.5 * 0.45), 0.3))
    assert got["m2"] == pytest.approx(tb(0.0, 0.3))
    assert got["c0"] == pytest.approx(tb(0.0, 0.2))
    off = scored_accounts(accounts, tx, risk, none, anomaly, FACTOR, neighbour_share=0.0)
    assert off.filter(pl.col("account_id") == "m1")["risk_score"].item() == pytest.approx(
        tb(0.2, 0.3)
    )


def test_one_off_relationships_with_several_unusual_accounts_add_up() -> None:
    from flows87.pipeline.stages.cases import one_off_neighbours

    # "member" met two unusual hubs once each (the edge of a laundering network); "client"
    # met one of them once: noisy-OR of the pieces, not the largest piece alone
    tx = pl.DataFrame(
        {"src_account": ["member", "hub2", "client"], "dst_account": ["hub1", "member", "hub1"]}
    )
    flagged = pl.DataFrame({"account_id": ["hub1", "hub2"], "anomaly_risk": [0.4, 0.3]})
    nb = dict(one_off_neighbours(tx, flagged, 1.0).iter_rows())
    assert nb["member"] == pytest.approx(1 - (1 - 0.4) * (1 - 0.3))
    assert nb["client"] == pytest.approx(0.4)
    assert nb["member"] > nb["client"]


def test_a_one_off_relationship_counts_by_how_busy_the_unusual_account_was_then() -> None:
    from datetime import datetime, timedelta

    from flows87.pipeline.stages.cases import one_off_neighbours

    # "hub" meets 8 new counterparties in its second week (m0 among them) and one, "early", in
    # its first week; "late" meets it in week 4 with one other new counterparty (q)
    day0 = datetime(2026, 3, 2, 9)
    rows = [("early", "hub", day0)]
    rows += [(f"m{i}", "hub", day0 + timedelta(days=8, hours=i)) for i in range(8)]
    rows += [("hub", "late", day0 + timedelta(days=22)), ("hub", "q", day0 + timedelta(days=23))]
    rows += [("anchor", "x", day0 + timedelta(days=29))]  # the data's span
    tx = pl.DataFrame(rows, schema=["src_account", "dst_account", "ts"], orient="row")
    flagged = pl.DataFrame({"account_id": ["hub"], "anomaly_risk": [0.5]})
    nb = dict(one_off_neighbours(tx, flagged, 1.0).iter_rows())
    assert nb["m0"] == pytest.approx(0.5)  # its busiest week
    assert nb["late"] == pytest.approx(0.5 * 2 / 8)
    assert nb["early"] == pytest.approx(0.5 * 1 / 8)
    # a period of 0 days (or no timestamps) counts every relationship whole
    assert dict(one_off_neighbours(tx, flagged, 1.0, 0).iter_rows())["early"] == 0.5
    flat = dict(one_off_neighbours(tx.drop("ts"), flagged, 1.0).iter_rows())
    assert flat["late"] == 0.5
