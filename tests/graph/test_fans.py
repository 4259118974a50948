"""Scatter-gather, controller hubs and many-to-one beneficiaries (flows87/pipeline/graph/fans.py):
each finds a planted instance and stays quiet on its near misses."""

from __future__ import annotations

import json
from typing import Any

import graph_cases
import pytest
from graph_rows import a, check_shape, context, evidence, roles, t

from flows87.pipeline.graph.patterns import PATTERNS, GraphContext, find


def test_scatter_gather_found() -> None:
    hits = find(context(graph_cases.scatter()), "scatter_gather")
    check_shape(hits)
    assert roles(hits) == {
        "A": "origin",
        "X0": "intermediary",
        "X1": "intermediary",
        "X2": "intermediary",
        "B": "beneficiary",
    }
    assert set(hits["instance"]) == {"scatter_gather:s0"}
    assert hits["txn_ids"][0].to_list() == ["s0", "s1", "s2", "g0", "g1", "g2"]
    ev = evidence(hits)
    assert ev["n_intermediaries"] == 3 and ev["source"] == "A" and ev["target"] == "B"
    assert ev["total_amount"] == 900 and ev["gathered_amount"] == 840


def test_scatter_gather_to_two_beneficiaries_is_two_instances() -> None:
    # The intermediaries pay both B and C: two scatter-gathers starting with the same payment,
    # each naming its own beneficiary (one instance would name either, at random).
    rows = graph_cases.scatter() + [t(f"h{i}", 12 + i, f"X{i}", "C", 270) for i in range(3)]
    hits = find(context(rows), "scatter_gather")
    check_shape(hits)
    targets = {
        inst: json.loads(part["evidence"][0])["target"]
        for (inst,), part in hits.partition_by("instance", as_dict=True).items()
    }
    assert targets == {"scatter_gather:s0>B": "B", "scatter_gather:s0>C": "C"}


def test_scatter_gather_near_misses() -> None:
    assert find(context(graph_cases.scatter(xs=2)), "scatter_gather").is_empty()
    assert find(
        context(graph_cases.scatter(gather_hours=-5)), "scatter_gather"
    ).is_empty()  # paid B first
    assert find(context(graph_cases.scatter(gather_hours=24 * 6)), "scatter_gather").is_empty()
    busy = [t(f"m{i}", 50 + i, f"shop{i}", "X2", 20, "card") for i in range(35)]
    assert find(
        context(graph_cases.scatter() + busy), "scatter_gather"
    ).is_empty()  # X2 is a merchant


def test_scatter_gather_ratio_and_card_degree() -> None:
    # Employees paying a common landlord out of their wages pass on a part only.
    wages = []
    for i in range(3):
        wages.append(t(f"s{i}", i, "EMP", f"X{i}", 3000, "ach"))
        wages.append(t(f"g{i}", 10 + i, f"X{i}", "LANDLORD", 900, "ach"))
    rule = {"min_ratio": 0.8, "max_ratio": 1.05}
    assert not find(context(wages), "scatter_gather").is_empty()  # the pattern's default
    assert find(context(wages), "scatter_gather", rule).is_empty()
    # Mules relaying all but a fee are found, even when they shop a lot by card.
    shops = [t(f"m{i}", 50 + i, "X2", f"shop{i}", 20, "card") for i in range(40)]  # purchases
    hits = find(context(graph_cases.scatter() + shops), "scatter_gather", rule)
    assert {"X0", "X1", "X2"} <= set(hits["account_id"])
    # ... but not when the intermediary has many transfer counterparties (a busy account).
    busy = [t(f"p{i}", 50 + i, f"friend{i}", "X2", 20, "p2p") for i in range(35)]
    hits = find(context(graph_cases.scatter() + busy), "scatter_gather", rule)
    assert "X2" not in set(hits["account_id"])


def test_controller_hub_found() -> None:
    hits = find(
        context(graph_cases.hub_rows(80), signals=graph_cases.signals(["S0", "S1", "S2"])),
        "controller_hub",
    )
    check_shape(hits)
    assert roles(hits) == {"H": "controller", "S0": "member", "S1": "member", "S2": "member"}
    ev = evidence(hits)
    assert ev["flagged_senders"] == 3 and ev["mean_share"] == pytest.approx(0.8)
    assert ev["sender_signals"] == ["ht_sweep_to_controller"] and ev["total_amount"] == 240
    assert sorted(hits["txn_ids"][0]) == ["h0", "h1", "h2"]


def test_controller_hub_near_misses() -> None:
    assert find(
        context(graph_cases.hub_rows(10), signals=graph_cases.signals(["S0", "S1", "S2"])),
        "controller_hub",
    ).is_empty()  # the hub takes only a tenth
    assert find(
        context(graph_cases.hub_rows(80), signals=graph_cases.signals(["S0", "S1"])),
        "controller_hub",
    ).is_empty()
    assert find(
        context(
            graph_cases.hub_rows(80), signals=graph_cases.signals(["S0", "S1", "S2"], "network")
        ),
        "controller_hub",
    ).is_empty()


def test_controller_hub_can_ask_for_repeated_sweeps() -> None:
    # each flagged sender paid the hub once (as a tenant pays rent) ...
    once = context(graph_cases.hub_rows(80), signals=graph_cases.signals(["S0", "S1", "S2"]))
    assert not find(once, "controller_hub").is_empty()  # the default asks for one payment
    assert find(once, "controller_hub", {"min_payments_per_sender": 2}).is_empty()
    # ... or twice, a week apart (a controller collects again and again)
    again = [t(f"a{i}", 24 * 7 + i, f"S{i}", "H", 80, "p2p") for i in range(3)]
    twice = context(
        graph_cases.hub_rows(80) + again, signals=graph_cases.signals(["S0", "S1", "S2"])
    )
    hits = find(twice, "controller_hub", {"min_payments_per_sender": 2})
    assert evidence(hits)["payments_per_sender"] == 2
    assert set(hits["account_id"]) == {"H", "S0", "S1", "S2"}


def test_infrastructure_is_never_the_controller() -> None:
    """A hub trading with a fifth of all accounts is a utility or processor, not a controller."""
    found = context(graph_cases.hub_rows(80), signals=graph_cases.signals(["S0", "S1", "S2"]))
    assert not find(found, "controller_hub").is_empty()
    # the same hub also paid once by 300 other accounts: it trades with 303 of 307 accounts
    bills = [t(f"b{i}", 30 + i / 100, f"C{i}", "H", 40, "card") for i in range(300)]
    busy = context(
        graph_cases.hub_rows(80) + bills, signals=graph_cases.signals(["S0", "S1", "S2"])
    )
    assert find(busy, "controller_hub").is_empty()
    assert not find(busy, "controller_hub", {"max_hub_share": 1.0}).is_empty()


def test_many_to_one_beneficiary_found() -> None:
    hits = find(graph_cases.many_to_one(), "many_to_one_beneficiary")
    check_shape(hits)
    assert roles(hits)["BEN"] == "beneficiary"
    assert sum(r == "sender" for r in roles(hits).values()) == 8
    ev = evidence(hits)
    assert ev["n_senders"] == 8 and ev["total_amount"] == 1200 and ev["beneficiary_country"] == "PH"
    assert ev["cv"] == 0 and ev["new_share"] == 1 and ev["individual_share"] == 1
    assert ev["kin_share"] == 0 and ev["duration_hours"] == 63
    assert set(hits["instance"]) == {"many_to_one_beneficiary:r0"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"senders": 7},
        {"spacing_hours": 24},
        {"channel": "card"},
        {"dst_country": "US"},
        {"amounts": [40.0, 400.0] * 4},
        {"kind": "business"},
        {"kin": 2},
        {"paid_before": True},
    ],
    ids=[
        "too-few",
        "too-spread",
        "card-sales",
        "domestic",
        "varied-amounts",
        "businesses",
        "relatives",
        "regular-payers",
    ],
)
def test_many_to_one_near_misses(kwargs: dict[str, Any]) -> None:
    assert find(graph_cases.many_to_one(**kwargs), "many_to_one_beneficiary").is_empty()


def _family_abroad() -> GraphContext:
    """A mother in Manila: six children abroad send what they can every week, and three in-laws
    join them from the second week on."""
    relatives = ["Santos"] * 6 + ["Cruz", "Lim", "Reyes"]
    accounts = [a("MOM", name="Maria Santos", country="PH")] + [
        a(f"K{i}", name=f"Child {s}") for i, s in enumerate(relatives)
    ]
    rows = [
        t(
            f"k{i}w{w}",
            24 * (7 * w + 1) + 5 * i,
            f"K{i}",
            "MOM",
            [120, 300, 80, 200, 450, 60, 150, 250, 100][(i + w) % 9],
            "mobile_money" if i % 2 else "wire",
            src_country="US",
            dst_country="PH",
            memo="FAMILY SUPPORT",
        )
        for i in range(9)
        for w in range(4)
        if i < 6 or w > 0
    ]
    return context(rows, accounts)


def test_many_to_one_ignores_a_family_abroad() -> None:
    family = _family_abroad()
    assert find(family, "many_to_one_beneficiary").is_empty()
    # as popular as a recruiter: popularity alone (the rule before) flags it
    popular = {"max_cv": 10.0, "min_new_share": 0.0, "max_kin_share": 1.0}
    assert find(family, "many_to_one_beneficiary", popular)["instance"].n_unique() == 1
    defaults = PATTERNS["many_to_one_beneficiary"].params
    for name in popular:  # varied sums, old payers, shared surname: each alone keeps it quiet
        one = {**popular, name: defaults[name]}
        assert find(family, "many_to_one_beneficiary", one).is_empty(), name
