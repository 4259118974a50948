"""Scoring and case building on hand-made signals whose outcome can be worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from flows87 import schema
from flows87.pipeline.cases import ScoringSettings, account_risk, build, case_id, links
from flows87.pipeline.rules import SIGNAL_SCHEMA

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def sig(
    source: str,
    sid: str,
    account: str,
    family: str,
    score: float,
    typologies: list[str],
    instance: str | None = None,
    txns: list[str] | None = None,
) -> dict:
    ev = {"instance": instance} if instance else {}
    return {
        "source": source,
        "signal_id": sid,
        "account_id": account,
        "txn_ids": txns or [],
        "score": score,
        "family": family,
        "typologies": typologies,
        "window_start": None,
        "window_end": None,
        "evidence": json.dumps(ev),
        "summary": f"{sid} on {account}",
    }


def transactions(pairs: list[tuple[str, str, float]]) -> pl.DataFrame:
    return schema.conform(
        pl.DataFrame(
            {
                "txn_id": [f"t{i}" for i in range(len(pairs))],
                "ts": [T0 + timedelta(hours=i) for i in range(len(pairs))],
                "src_account": [p[0] for p in pairs],
                "dst_account": [p[1] for p in pairs],
                "amount": [p[2] for p in pairs],
                "currency": ["USD"] * len(pairs),
                "amount_base": [p[2] for p in pairs],
                "channel": ["p2p"] * len(pairs),
            }
        ),
        "transactions",
    ).collect()


SETTINGS = ScoringSettings()


def test_signals_and_families_combine_as_noisy_or() -> None:
    signals = pl.DataFrame(
        [
            sig("rule", "r1", "a", "behaviour", 0.5, ["x"]),
            sig("rule", "r2", "a", "behaviour", 0.5, ["x"]),
            sig("graph", "g1", "b", "network", 0.5, ["x"]),
            sig("rule", "r1", "b", "behaviour", 0.5, ["x"]),
        ],
        schema=SIGNAL_SCHEMA,
    )
    risk = account_risk(signals, links(signals, transactions([])), SETTINGS)
    r = {row["account_id"]: row for row in risk.iter_rows(named=True)}
    assert r["a"]["base_risk"] == pytest.approx(1 - 0.5 * 0.5)  # noisy-OR inside one family
    assert r["b"]["base_risk"] == pytest.approx(1 - 0.5 * 0.5)  # two families combine again
    assert r["b"]["risk_score"] == r["b"]["base_risk"]  # no link, no neighbour share

    assert not r["a"]["eligible"] and r["b"]["eligible"]  # one family is not corroboration


def test_strong_signal_alone_is_eligible_but_anomaly_is_no_family() -> None:
    signals = pl.DataFrame(
        [
            sig("rule", "structuring", "s", "behaviour", 1.0, ["structuring"]),
            sig("rule", "r", "u", "behaviour", 0.75, ["x"]),
            sig("detector", "pyod_ensemble", "u", "anomaly", 0.99, []),
        ],
        schema=SIGNAL_SCHEMA,
    )
    risk = account_risk(signals, links(signals, transactions([])), SETTINGS)
    r = {row["account_id"]: row for row in risk.iter_rows(named=True)}
    assert r["s"]["eligible"]
    assert r["u"]["n_families"] == 1 and not r["u"]["eligible"]


def test_cases_group_linked_accounts_attach_pattern_members_and_are_stable() -> None:
    signals = pl.DataFrame(
        [
            # victim v1, v2 and controller c: behaviour + network each, same typology, money v -> c
            sig("rule", "late_night", "v1", "behaviour", 0.75, ["sex_trafficking"]),
            sig("rule", "late_night", "v2", "behaviour", 0.75, ["sex_trafficking"]),
            sig("graph", "hub", "v1", "network", 1.0, ["sex_trafficking"], "hub:1"),
            sig("graph", "hub", "v2", "network", 1.0, ["sex_trafficking"], "hub:1"),
            sig("graph", "hub", "c", "network", 1.0, ["sex_trafficking"], "hub:1"),
            sig("rule", "hotels", "c", "behaviour", 0.5, ["sex_trafficking"]),
            # spoke m: only the pattern, attached to the case; loner z: unrelated, no case
            sig("graph", "fan", "m", "network", 0.5, ["fan_in"], "hub:1"),
            sig("rule", "hotels", "z", "behaviour", 0.5, ["sex_trafficking"]),
        ],
        schema=SIGNAL_SCHEMA,
    )
    tx = transactions([("v1", "c", 300), ("v2", "c", 280), ("m", "v1", 50), ("z", "c", 10)])
    found = links(signals, tx)
    risk = account_risk(signals, found, SETTINGS)
    built = build(risk, signals, found, tx, SETTINGS)
    assert built.cases.height == 1
    case = built.cases.row(0, named=True)
    assert set(case["accounts"]) == {"v1", "v2", "c", "m"}
    assert case["case_id"] == case_id(case["anchor_account"])
    assert case["central_account"] == "c"  # money converges on the controller
    assert "sex trafficking" in case["summary"] and "converges on account c" in case["summary"]
    assert set(case["txn_ids"]) == set()  # no signal above listed transactions
    again = build(risk, signals, found, tx, SETTINGS)
    assert again.cases.equals(built.cases)
    assert "z" not in set(built.membership["account_id"])


def test_transfer_links_need_a_common_typology() -> None:
    signals = pl.DataFrame(
        [
            sig("rule", "a1", "a", "behaviour", 0.5, ["structuring"]),
            sig("rule", "b1", "b", "behaviour", 0.5, ["round_tripping"]),
            sig("rule", "c1", "c", "behaviour", 0.5, ["structuring"]),
        ],
        schema=SIGNAL_SCHEMA,
    )
    tx = transactions([("a", "b", 100), ("a", "c", 100)])
    found = links(signals, tx)
    assert found.transfers.select("a", "b").rows() == [("a", "c")]
    assert found.members.is_empty()  # no pattern instance


def test_of_equally_risky_accounts_the_one_with_more_red_flags_anchors_the_case() -> None:
    # "a" sorts first, but "b" carries two red flags to its one
    signals = pl.DataFrame(
        [
            sig("graph", "hub", "a", "network", 0.9, ["fan_in"], "hub:1"),
            sig("graph", "hub", "b", "network", 0.9, ["fan_in"], "hub:1"),
            sig("rule", "hotels", "b", "behaviour", 0.5, ["fan_in"]),
        ],
        schema=SIGNAL_SCHEMA,
    )
    tx = transactions([("a", "b", 100)])
    found = links(signals, tx)
    # equal risk, both eligible: only the tie-break decides
    risk = account_risk(signals, found, SETTINGS).with_columns(
        pl.lit(0.9).alias("risk_score"), pl.lit(True).alias("eligible")
    )
    assert dict(zip(risk["account_id"], risk["n_signals"], strict=True)) == {"a": 1, "b": 2}
    built = build(risk, signals, found, tx, SETTINGS)
    assert built.cases.height == 1
    assert built.cases.row(0, named=True)["anchor_account"] == "b"


def _instance_signals(instance: str, accounts: list[str], score: float = 1.0) -> list[dict]:
    return [sig("graph", "chain", a, "network", score, ["mule_chain"], instance) for a in accounts]


def test_a_20k_member_instance_is_one_capped_case_built_from_linear_tables() -> None:
    """An instance is one node joined to its members: 20,000 rows, not 200 million pairs; the
    case names its riskiest accounts up to the cap and lists the rest as linked."""
    n = 20_000
    accounts = [f"m{i:05d}" for i in range(n)]
    rows = _instance_signals("chain:1", accounts)
    rows += [sig("rule", "sweep", a, "behaviour", 0.75, ["mule_chain"]) for a in accounts[:10]]
    signals = pl.DataFrame(rows, schema=SIGNAL_SCHEMA)
    tx = transactions([(accounts[i], accounts[i + 1], 1000.0) for i in range(n - 1)])
    found = links(signals, tx)
    assert found.members.height == n  # one row per member
    assert found.transfers.height <= tx.height  # at most one row per pair that transacted
    risk = account_risk(signals, found, SETTINGS)
    settings = ScoringSettings(max_case_accounts=40, max_split_accounts=1000)
    built = build(risk, signals, found, tx, settings)
    assert built.cases.height == 1  # one chain, one case: not thousands of small ones
    case = built.cases.row(0, named=True)
    assert case["n_accounts"] == 40 and case["n_linked"] == n - 40
    assert set(case["accounts"][:10]) == set(accounts[:10])  # the riskiest are named
    assert set(case["accounts"]) | set(case["linked_accounts"]) == set(accounts)
    assert built.membership.height == 40 and built.linked.height == n - 40
    assert any("too large for community splitting" in w for w in built.warnings)
    assert "listed as linked" in case["summary"]


def test_louvain_splits_a_large_group_but_never_cuts_an_instance() -> None:
    """Two instances of 30 accounts joined by one transfer: a linked group of 60 (over the cap
    of 40) splits into the two instances, whatever Louvain would do with their members."""
    a = [f"a{i:02d}" for i in range(30)]
    b = [f"b{i:02d}" for i in range(30)]
    signals = pl.DataFrame(
        _instance_signals("fan:a", a) + _instance_signals("fan:b", b), schema=SIGNAL_SCHEMA
    )
    tx = transactions([("a00", "b00", 500.0)] + [(a[i], a[i + 1], 10.0) for i in range(29)])
    found = links(signals, tx)
    risk = account_risk(signals, found, SETTINGS)
    built = build(risk, signals, found, tx, SETTINGS)
    groups = sorted(sorted(x) for x in built.cases["accounts"].to_list())
    assert groups == [sorted(a), sorted(b)]
    assert built.linked.is_empty() and not built.warnings


def test_party_view_one_person_at_two_banks_is_one_subject() -> None:
    """Behaviour at bank A and a network flag at bank B are two families of one resolved
    person: both accounts (and the person's quiet third account) take the party's risk and land
    in one case; the same accounts without resolution (or at one bank) stay uncorroborated."""
    from flows87.pipeline.cases import spread_parties, with_parties

    signals = pl.DataFrame(
        [
            sig("rule", "r1", "A:1", "behaviour", 0.9, ["structuring"]),
            sig("graph", "g1", "B:1", "network", 0.9, ["sex_trafficking"], instance="g1:x"),
            sig("rule", "r2", "c", "behaviour", 0.9, ["x"]),
        ],
        schema=SIGNAL_SCHEMA,
    )
    accounts = pl.DataFrame(
        {
            "account_id": ["A:1", "B:1", "B:2", "c", "A:9", "A:8"],
            "party_id": ["p1", "p1", "p1", None, "p2", "p2"],
            "bank_id": ["A", "B", "B", "A", "A", "A"],
        }
    )
    parties = spread_parties(accounts, SETTINGS.party_min_banks)
    # p2 holds two accounts at one bank: one bank's own view, nothing for the party view
    assert sorted(parties["account_id"]) == ["A:1", "B:1", "B:2"]
    found = links(signals, transactions([]))

    alone = {
        r["account_id"]: r for r in account_risk(signals, found, SETTINGS).iter_rows(named=True)
    }
    assert not alone["A:1"]["eligible"] and not alone["B:1"]["eligible"]
    assert "B:2" not in alone

    risk = account_risk(signals, found, SETTINGS, parties)
    r = {row["account_id"]: row for row in risk.iter_rows(named=True)}
    for account in ("A:1", "B:1", "B:2"):
        assert r[account]["families"] == ["behaviour", "network"]
        assert r[account]["n_signals"] == 2 and r[account]["eligible"]
        assert r[account]["base_risk"] == pytest.approx(1 - 0.1 * 0.1)
    assert r["c"] == alone["c"]  # an account outside every spread party is scored as before

    built = build(risk, signals, with_parties(found, parties), transactions([]), SETTINGS)
    by_case = built.membership.group_by("case_id").agg(pl.col("account_id").sort())
    assert sorted(by_case["account_id"].to_list()) == [["A:1", "B:1", "B:2"]]

    # switched off in scoring.yaml: party_min_banks 0
    assert spread_parties(accounts, 0).is_empty()
