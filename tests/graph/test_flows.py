"""Cycles and layering chains (flows87/pipeline/graph/flows.py): each finds a planted instance and
stays quiet on its near misses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import graph_cases
import pytest
from graph_rows import T0, check_shape, context, evidence, roles, t

from flows87.pipeline.graph.patterns import find


def test_cycle_found_with_roles_and_retained_amount() -> None:
    noise = [t("n1", 1, "B", "D", 40), t("n2", 2, "D", "E", 700)]
    hits = find(context(graph_cases.CYCLE + noise), "cycle")
    check_shape(hits)
    assert set(hits["instance"]) == {"cycle:c1"}
    assert roles(hits) == {"A": "origin", "B": "intermediary", "C": "intermediary"}
    assert hits["txn_ids"][0].to_list() == ["c1", "c2", "c3"]
    ev = evidence(hits)
    assert ev["length"] == 3 and ev["retained"] == pytest.approx(0.9)
    assert ev["first_amount"] == 1000 and ev["returned_amount"] == 900
    assert ev["duration_hours"] == 30 and ev["first_ts"].startswith("2024-03-01T00:00")


@pytest.mark.parametrize(
    "change",
    [
        {"c3": {"ts": T0 - timedelta(hours=1)}},  # closes before it opens: not time-ordered
        {"c3": {"ts": T0 + timedelta(days=11)}},  # slower than the 10-day window
        {"c3": {"amount_base": 500.0}},  # only half comes back on the last hop
        {"c1": {"amount_base": 400.0}, "c2": {"amount_base": 390.0}, "c3": {"amount_base": 380.0}},
    ],
    ids=["not-time-ordered", "too-slow", "amount-drops", "too-small"],
)
def test_cycle_near_misses(change: dict[str, dict[str, Any]]) -> None:
    rows = [{**r, **change.get(r["txn_id"], {})} for r in graph_cases.CYCLE]
    assert find(context(rows), "cycle").is_empty()


def test_cycle_length_param() -> None:
    assert find(context(graph_cases.CYCLE), "cycle", {"min_length": 4}).is_empty()
    two = [t("d1", 0, "A", "B", 1000), t("d2", 1, "B", "A", 990)]
    assert find(context(two), "cycle").is_empty()
    assert set(find(context(two), "cycle", {"min_length": 2})["account_id"]) == {"A", "B"}


def test_layering_chain_reports_the_whole_chain_once() -> None:
    hits = find(context(graph_cases.CHAIN), "layering_chain")
    check_shape(hits)
    assert set(hits["instance"]) == {"layering_chain:l1"}
    assert roles(hits) == {
        "A": "origin",
        "B": "intermediary",
        "C": "intermediary",
        "D": "intermediary",
        "E": "end",
    }
    assert hits["txn_ids"][0].to_list() == ["l1", "l2", "l3", "l4"]
    ev = evidence(hits)
    assert ev["hops"] == 4 and ev["max_hop_hours"] == 20 and ev["retained"] == pytest.approx(0.9)


@pytest.mark.parametrize(
    "rows",
    [
        [
            *graph_cases.CHAIN[:2],
            {**graph_cases.CHAIN[2], "ts": T0 + timedelta(hours=70)},
        ],  # third hop 60 h later
        [*graph_cases.CHAIN[:2], {**graph_cases.CHAIN[2], "amount_base": 1100.0}],  # amount grows
        [
            *graph_cases.CHAIN[:2],
            {**graph_cases.CHAIN[2], "dst_account": "A"},
        ],  # a cycle, not a chain
    ],
    ids=["slow-hop", "amount-grows", "cycle"],
)
def test_layering_chain_near_misses(rows: list[dict[str, Any]]) -> None:
    assert find(context(rows), "layering_chain").is_empty()
