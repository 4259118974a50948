"""Fan-in and fan-out hubs (flows87/pipeline/graph/hubs.py): the hub, its spokes, its ends abroad,
and front companies that count only when cashed out."""

from __future__ import annotations

from datetime import timedelta

import graph_cases
import pytest
from graph_rows import a, check_shape, context, evidence, roles, t

from flows87.pipeline.graph.patterns import find


@pytest.mark.parametrize(
    "name, inbound, spoke_role", [("fan_in", True, "sender"), ("fan_out", False, "receiver")]
)
def test_fan_names_the_hub_and_every_spoke(name: str, inbound: bool, spoke_role: str) -> None:
    hits = find(context(graph_cases.fan_rows(inbound=inbound)), name)
    check_shape(hits)
    assert roles(hits) == {"H": "hub", **{f"S{i}": spoke_role for i in range(7)}}
    ev = evidence(hits)
    assert (ev["n_counterparties"], ev["total_amount"], ev["hub"]) == (7, 8400.0, "H")
    assert ev["flow_through"] == (0.9 if inbound else 1.0)
    assert hits["txn_ids"][0].to_list() == [f"F{i}" for i in range(7)]


@pytest.mark.parametrize("name, inbound", [("fan_in", True), ("fan_out", False)])
def test_fan_near_misses(name: str, inbound: bool) -> None:
    assert find(context(graph_cases.fan_rows(5, inbound=inbound)), name).is_empty()  # too few
    assert find(
        context(graph_cases.fan_rows(inbound=inbound, channel="card")), name
    ).is_empty()  # a shop
    assert find(
        context(graph_cases.fan_rows(inbound=inbound, amount=80)), name
    ).is_empty()  # small sums
    business = context(graph_cases.fan_rows(inbound=inbound), [a("H", kind="business")])
    assert find(business, name).is_empty()  # payroll / a company's receipts
    slow = context(graph_cases.fan_rows(inbound=inbound, days_apart=1))
    assert find(slow, name).is_empty()  # spread over a week
    assert not find(slow, name, {"window_days": 8}).is_empty()
    # The landlord look-alike: rent from many tenants that stays (or a payout from savings).
    kept = context(graph_cases.fan_rows(inbound=inbound, flow=False))
    assert find(kept, name).is_empty()
    assert not find(kept, name, {"min_flow_through": 0.0}).is_empty()


def test_business_fan_in_counts_only_when_cashed_out() -> None:
    """A front company collecting transfers and withdrawing them in cash is a fan-in; a
    company paying its supplier (the flow in `graph_cases.fan_rows`) is not."""
    rows = graph_cases.fan_rows(flow=False) + [
        t("CASH1", 30, "H", "CASH:BR1", 9000, "cash_withdrawal"),
    ]
    hits = find(context(rows, [a("H", kind="business")]), "fan_in")
    assert roles(hits)["H"] == "hub"
    assert evidence(hits)["flow_through"] == 1.0  # 9,000 withdrawn of 8,400 collected
    assert find(context(rows, [a("H", kind="business")]), "fan_in", {"business_hubs": 0}).is_empty()


def test_fan_names_the_funder_and_beneficiary_abroad() -> None:
    """The account abroad that funded a fan-out (or took a fan-in's collection) is named; a
    domestic one (a victim, an employer, a landlord) is not."""
    abroad = {"src_country": "BZ", "dst_country": "US"}
    out_rows = graph_cases.fan_rows(inbound=False, flow=False) + [
        t("IN", -2, "ORIGIN", "H", 8400, **abroad)
    ]
    hits = find(context(out_rows), "fan_out")
    check_shape(hits)
    assert roles(hits)["ORIGIN"] == "funder"
    assert "IN" in hits["txn_ids"][0].to_list()
    assert roles(find(context(graph_cases.fan_rows(inbound=False)), "fan_out")).get("BOSS") is None
    tiny = out_rows + [t("IN2", -3, "OTHER", "H", 500, **abroad)]
    assert "OTHER" not in roles(find(context(tiny), "fan_out"))  # under min_source_share

    last = graph_cases.fan_rows()[-2]["ts"]
    away = {"src_country": "US", "dst_country": "MX"}
    in_rows = graph_cases.fan_rows(flow=False) + [
        t("OUT", 0, "H", "CONTROLLER", 8000, **away) | {"ts": last + timedelta(hours=20)}
    ]
    hits = find(context(in_rows), "fan_in")
    assert roles(hits)["CONTROLLER"] == "beneficiary"
    assert roles(find(context(graph_cases.fan_rows()), "fan_in")).get("BOSS") is None


def test_business_fan_out_counts_receivers_who_cash_out() -> None:
    """A front company placing cash and paying mules who withdraw it at once is a fan-out; a
    business paying wages (the receivers keep the money) is not, whatever funded it."""
    hits = find(graph_cases.front_company(), "fan_out")
    check_shape(hits)
    assert roles(hits) == {"H": "hub", **{f"S{i}": "receiver" for i in range(7)}}
    assert evidence(hits)["flow_through"] == 1.0
    assert find(graph_cases.front_company(cashed=0.1), "fan_out").is_empty()  # wages, kept
    assert find(graph_cases.front_company(placed=False), "fan_out").is_empty()  # paid from the till
    assert find(
        graph_cases.front_company(amount=300), "fan_out"
    ).is_empty()  # under min_business_amount
    assert not find(
        graph_cases.front_company(amount=300), "fan_out", {"min_business_amount": 200}
    ).is_empty()
    assert find(graph_cases.front_company(), "fan_out", {"business_hubs": 0}).is_empty()
    # an individual hub's small payouts count (mules are paid a few hundred each)
    assert not find(context(graph_cases.fan_rows(inbound=False, amount=300)), "fan_out").is_empty()
