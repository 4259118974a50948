"""Mule networks and multi-card ATM withdrawals (flows87/pipeline/graph/mules.py)."""

from __future__ import annotations

import random
from typing import Any

import graph_cases
import polars as pl
import pytest
from graph_rows import a, check_shape, context, evidence, roles, t
from polars.testing import assert_frame_equal

from flows87.pipeline.graph.patterns import GraphContext, find
from flows87.pipeline.rules.loader import RULES_DIR, load_rule


def test_mule_network_found() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    hits = find(context(graph_cases.mules(30, graph_cases.FULL), young), "mule_network")
    check_shape(hits)
    assert roles(hits) == {
        **{f"S{i}": "sender" for i in range(3)},
        **{f"R{i}": "receiver" for i in range(3)},
    }
    ev = evidence(hits)
    assert ev["density"] == 1.0 and ev["n_edges"] == 9 and len(hits["txn_ids"][0]) == 9
    assert ev["n_senders"] == 3 and ev["n_receivers"] == 3


def test_mule_network_found_inside_a_loose_component() -> None:
    # A ring of young accounts (each pays the next two) hangs off R0: the component as a whole is
    # far from dense, so only its Louvain split reveals the 3x3 group (stretches of the ring,
    # young accounts passing money on to each other, may be reported too).
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    young += [a(f"Q{i}", opened_days=-10) for i in range(10)]
    ring = [
        t(f"q{i}{d}", 100 + i, f"Q{i}", f"Q{(i + d) % 10}", 50, "p2p")
        for i in range(10)
        for d in (1, 2)
    ]
    bridge = [t("b1", 130, "R0", "Q0", 50, "p2p"), t("b2", 131, "R0", "Q5", 50, "p2p")]
    hits = find(
        context(graph_cases.mules(30, graph_cases.FULL) + ring + bridge, young), "mule_network"
    )
    planted = {f"S{i}" for i in range(3)} | {f"R{i}" for i in range(3)}
    group = hits.filter(pl.col("instance") == hits.filter(pl.col("account_id") == "S0")["instance"])
    assert set(group["account_id"]) == planted
    assert evidence(group)["density"] == 1.0


def test_mule_network_min_amount() -> None:
    # Young friends splitting small bills are as dense as a mule ring but move next to nothing.
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    assert find(
        context(graph_cases.mules(30, graph_cases.FULL, amount=60), young), "mule_network"
    ).is_empty()
    small = find(
        context(graph_cases.mules(30, graph_cases.FULL, amount=60), young),
        "mule_network",
        {"min_amount": 500},
    )
    assert set(small["account_id"]) == {f"{k}{i}" for k in "SR" for i in range(3)}
    rule = load_rule(RULES_DIR / "ml_mule_network.yaml")
    assert rule.values()["min_amount"] == 5000 and rule.params["min_amount"].max >= 1_000_000


def test_mule_network_near_misses() -> None:
    old = [a(f"{k}{i}", opened_days=-400) for k in "SR" for i in range(3)]
    assert find(context(graph_cases.mules(400, graph_cases.FULL), old), "mule_network").is_empty()
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    sparse = [(0, 0), (1, 1), (2, 2), (0, 1)]
    assert find(context(graph_cases.mules(30, sparse), young), "mule_network").is_empty()


def test_multi_card_atm_found() -> None:
    hits = find(graph_cases.atm(), "multi_card_atm")
    check_shape(hits)
    assert hits["account_id"].to_list() == ["C0", "C1", "C2"]
    assert set(hits["instance"]) == {"multi_card_atm:atm00"}
    assert hits["txn_ids"][0].to_list() == [f"atm{v}{i}" for v in range(2) for i in range(3)]
    ev = evidence(hits)
    assert ev["location_id"] == "ATM-1" and ev["n_parties"] == 3 and ev["n_accounts"] == 3
    assert ev["n_occasions"] == 2 and ev["n_withdrawals"] == 6
    assert ev["longest_occasion_minutes"] == 6 and ev["total_amount"] == 1200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"minutes_apart": 6},  # 12 minutes from first to last card
        {"visits": (10,), "cards": ((0, 1, 2),)},  # once only
        {"visits": (10, 10.5)},  # half an hour later is the same occasion
        {"same_party": True},  # one person's own cards
        {"cards": ((0, 1, 2), (0, 1, 3))},  # not the same set twice
    ],
    ids=["too-slow", "once", "same-occasion", "same-party", "other-set"],
)
def test_multi_card_atm_near_misses(kwargs: dict[str, Any]) -> None:
    assert find(graph_cases.atm(**kwargs), "multi_card_atm").is_empty()


def _queue(
    day: int, people: range, every_minutes: float, prefix: str = "Q"
) -> list[dict[str, Any]]:
    """One customer after another at ATM-1 from 9:00, `every_minutes` apart."""
    return [
        graph_cases.cash(
            f"{prefix}{day}_{p}", 24 * day + 9 + i * every_minutes / 60, f"{prefix}{p}"
        )
        for i, p in enumerate(people)
    ]


def test_multi_card_atm_ignores_a_busy_atm() -> None:
    # 40 strangers a morning, one every 2 minutes, other strangers each day: the old rule saw
    # one 80-minute burst a day; nobody comes back with the same people.
    busy = [r for d in range(3) for r in _queue(d, range(40 * d, 40 * d + 40), 2)]
    assert find(context(busy), "multi_card_atm").is_empty()
    assert (
        find(context(busy), "multi_card_atm", {"min_occasions": 1, "max_accounts": 100})[
            "instance"
        ].n_unique()
        >= 3
    )
    # the same 12 commuters every weekday morning within minutes: regulars, not one controller
    regulars = [r for d in range(5) for r in _queue(d, range(12), 0.8, "R")]
    assert find(context(regulars), "multi_card_atm").is_empty()
    assert (
        find(context(regulars), "multi_card_atm", {"max_accounts": 12})["instance"].n_unique() == 1
    )


def test_multi_card_atm_found_inside_a_crowd() -> None:
    # the controller's visits fall in the middle of each morning's queue of strangers
    crowd = [r for d in (0, 3) for r in _queue(d, range(40 * d, 40 * d + 30), 1)]
    hits = find(graph_cases.atm(visits=(9.2, 24 * 3 + 9.2), crowd=crowd), "multi_card_atm")
    assert set(hits["account_id"]) == {"C0", "C1", "C2"}
    assert evidence(hits)["n_withdrawals"] == 6


def test_mule_network_in_a_loose_component_does_not_depend_on_row_order() -> None:
    # Young accounts paying each other at random: the component is loose, so it is split with
    # Louvain, whose result must not depend on the order of the transactions.
    rng = random.Random(5)
    names = [f"Y{i:02d}" for i in range(40)]
    young = [a(n, opened_days=-10) for n in names]
    rows = [t(f"y{i}", i, *rng.sample(names, 2), 50 + i, "p2p") for i in range(160)]
    rows += graph_cases.mules(30, graph_cases.FULL)
    young += [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    ctx = context(rows, young)
    first = find(ctx, "mule_network")
    assert not first.is_empty()
    for seed in range(4):
        shuffled = GraphContext(
            ctx.transactions.sample(fraction=1, shuffle=True, seed=seed),
            ctx.accounts.sample(fraction=1, shuffle=True, seed=seed + 10),
            pl.DataFrame(),
            ctx.signals,
        )
        assert_frame_equal(find(shuffled, "mule_network"), first)


def test_mule_network_names_its_ends_abroad() -> None:
    young = [a(f"{k}{i}", opened_days=-30) for k in "SR" for i in range(3)]
    abroad = {"src_country": "KY", "dst_country": "US"}
    away = {"src_country": "US", "dst_country": "MX"}
    rows = graph_cases.mules(30, graph_cases.FULL) + [
        t("fund", -5, "OFFSHORE", "S0", 3000, **abroad),
        t("late", -200, "OLD", "S1", 3000, **abroad),  # long before: not this ring's money
        t("sink", 20, "R0", "SINK", 2500, **away),
        t("rent", 21, "R1", "LANDLORD", 2500),  # domestic: left out
    ]
    hits = find(context(rows, young), "mule_network")
    check_shape(hits)
    got = roles(hits)
    assert got["OFFSHORE"] == "funder" and got["SINK"] == "beneficiary"
    assert {"OLD", "LANDLORD"}.isdisjoint(got)
    assert {"fund", "sink"} <= set(hits["txn_ids"][0].to_list())
