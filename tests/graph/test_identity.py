"""Identity patterns (flows87/pipeline/graph/identity.py): shared identifiers, onboarding bursts and
common payees."""

from __future__ import annotations

from typing import Any

import graph_cases
from graph_rows import a, check_shape, context, evidence, roles, t

from flows87.pipeline.graph.patterns import find


def test_shared_identifiers_found() -> None:
    hits = find(
        graph_cases.ring(["Ann Smith", "Bo Jones", "Cy Brown", "Di Lee"]), "shared_identifiers"
    )
    check_shape(hits)
    assert set(hits["account_id"]) == {"I0", "I1", "I2", "I3"}
    assert set(hits["role"]) == {"member"}
    ev = evidence(hits)
    assert ev["n_parties"] == 4 and ev["n_surnames"] == 4
    assert ev["identifiers"] == ["address:9 elm st", "email:x@y.z", "phone:+1 555 0100"]
    assert ev["kinds"] == ["address", "email", "phone"] and ev["strong_identifiers"] == []


def test_shared_identifiers_near_misses() -> None:
    family = graph_cases.ring(["Ann Smith", "Bo Smith", "Cy Smith", "Di Smith"])
    assert find(family, "shared_identifiers").is_empty()
    ring = graph_cases.ring(["Ann Smith", "Bo Jones", "Cy Brown", "Di Lee"])
    assert find(ring, "shared_identifiers", {"min_parties": 5}).is_empty()
    # every shared value is shared by 2 parties; a cap of 1 drops them all
    assert find(ring, "shared_identifiers", {"max_group": 1}).is_empty()


def test_shared_identifiers_without_names_uses_parties_only() -> None:
    hits = find(graph_cases.ring([None, None, None, None]), "shared_identifiers")
    assert set(hits["account_id"]) == {"I0", "I1", "I2", "I3"}
    assert evidence(hits)["n_surnames"] is None


def test_shared_identifiers_counts_transaction_devices() -> None:
    accounts = [a(f"V{i}", name=f"N{i} Sur{i}") for i in range(4)]
    rows = [t(f"v{i}", i, f"V{i}", "SHOP", 10, "card", device_id="phone-1") for i in range(4)]
    hits = find(context(rows, accounts), "shared_identifiers")
    assert set(hits["account_id"]) == {"V0", "V1", "V2", "V3"}
    assert hits["txn_ids"][0].to_list() == ["v0", "v1", "v2", "v3"]


def _house(surnames: list[str], **shared: str) -> list[dict[str, Any]]:
    """People at one address; `shared` gives identifiers the first two of them also share."""
    return [
        {**a(f"H{i}", name=f"Sam {s}", address="12 Campus Rd"), **(shared if i < 2 else {})}
        for i, s in enumerate(surnames)
    ]


def test_shared_identifiers_ignores_flatmates() -> None:
    flat = context([], _house(graph_cases.STUDENTS))
    assert find(flat, "shared_identifiers").is_empty()
    assert set(find(flat, "shared_identifiers", {"min_kinds": 1})["account_id"]) == {
        f"H{i}" for i in range(5)
    }  # what the rule flagged before: five surnames at one address
    # a couple among them sharing a tablet is two people, not a ring of four
    couple = context([], _house(graph_cases.STUDENTS, device_id="tab-1"))
    assert find(couple, "shared_identifiers").is_empty()
    # a family of five sharing address and phone has one surname
    family = context([], _house(["Novak"] * 5, phone="+1 555 0177"))
    assert find(family, "shared_identifiers").is_empty()


def test_shared_identifiers_strong_value_alone() -> None:
    strangers = [
        a(f"S{i}", name=f"Kim {s}", phone="+1 555 0199") for i, s in enumerate(graph_cases.STUDENTS)
    ]
    # S0 lives with flatmates and relatives: they are tied to the ring by the address only
    home = [
        a("F1", name="Lee Park", address="3 Oak St"),
        a("F2", name="Ray Diaz", address="3 Oak St"),
        {**strangers[0], "address": "3 Oak St"},
    ]
    hits = find(context([], strangers[1:4] + home), "shared_identifiers")
    assert set(hits["account_id"]) == {"S0", "S1", "S2", "S3"}
    ev = evidence(hits)
    assert ev["strong_identifiers"] == ["phone:+1 555 0199"] and ev["n_parties"] == 4
    # three strangers on one phone are fewer than min_parties, with nothing else shared
    assert find(context([], strangers[:3]), "shared_identifiers").is_empty()


def test_onboarding_burst_found() -> None:
    hits = find(graph_cases.openings(gap_days=2), "onboarding_burst")
    check_shape(hits)
    assert hits["account_id"].to_list() == ["N0", "N1", "N2"]
    assert set(hits["instance"]) == {"onboarding_burst:device_id:tablet-9"}
    ev = evidence(hits)
    assert ev["n_accounts"] == 3 and ev["span_days"] == 4 and ev["n_parties"] == 3


def test_onboarding_burst_near_misses() -> None:
    assert find(graph_cases.openings(gap_days=5), "onboarding_burst").is_empty()
    assert find(graph_cases.openings(gap_days=2, same_party=True), "onboarding_burst").is_empty()


def test_common_payee_found() -> None:
    hits = find(graph_cases.sharers(2, graph_cases.STUDENTS[:4]), "common_payee")
    check_shape(hits)
    assert roles(hits) == {**{f"W{i}": "payer" for i in range(4)}, "BEN": "payee"}
    ev = evidence(hits)
    assert ev["n_payers"] == 4 and ev["n_transfers"] == 8
    assert ev["shared_identifier"] == "address:9 mill rd" or ev["shared_identifier"].startswith(
        "address:"
    )


def test_common_payee_near_misses() -> None:
    # flatmates paying their landlord once a month
    assert find(graph_cases.sharers(1, graph_cases.STUDENTS[:4]), "common_payee").is_empty()
    # a family at one address paying a relative
    assert find(graph_cases.sharers(2, ["Novak"] * 4), "common_payee").is_empty()
    # two sharers are not a group
    assert find(graph_cases.sharers(3, graph_cases.STUDENTS[:2]), "common_payee").is_empty()
    # the payee lives with them (the head tenant collecting shares)
    people = [
        a(f"W{i}", name=f"Ana {s}", address="9 Mill Rd") for i, s in enumerate(graph_cases.STUDENTS)
    ]
    rows = [
        t(f"w{i}{k}", 24 * (i + 7 * k), f"W{i}", "W4", 250, "p2p")
        for i in range(4)
        for k in range(2)
    ]
    assert find(context(rows, people), "common_payee").is_empty()
