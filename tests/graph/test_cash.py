"""Cash and corridor patterns (flows87/pipeline/graph/cash.py, corridors.py): funnel accounts,
structuring over a party's accounts, corridor beneficiaries."""

from __future__ import annotations

from datetime import timedelta

import graph_cases
import polars as pl
from graph_rows import check_shape, context, evidence, roles

from flows87.pipeline.graph.patterns import GraphContext, find


def test_corridor_beneficiaries_found() -> None:
    ctx = context(graph_cases.small_intl(), signals=graph_cases.cse_signal("SENDER"))
    hits = find(ctx, "corridor_beneficiaries")
    check_shape(hits)
    # A facilitator is paid per session: one paid once (AUNT) is named too.
    assert roles(hits) == {
        "SENDER": "sender",
        "FAC0": "beneficiary",
        "FAC1": "beneficiary",
        "AUNT": "beneficiary",
    }
    ev = evidence(hits)
    assert ev["n_beneficiaries"] == 3 and ev["n_transfers"] == 9 and ev["countries"] == "PH"
    assert "big" not in hits["txn_ids"][0].to_list()  # not a small payment
    assert "home" not in hits["txn_ids"][0].to_list()  # not abroad
    twice = find(ctx, "corridor_beneficiaries", {"min_payments": 2})
    assert roles(twice) == {"SENDER": "sender", "FAC0": "beneficiary", "FAC1": "beneficiary"}


def test_corridor_beneficiaries_near_misses() -> None:
    assert find(
        context(graph_cases.small_intl()), "corridor_beneficiaries"
    ).is_empty()  # nobody flagged
    weak = graph_cases.cse_signal(
        "SENDER", score=0.5
    )  # e.g. a remittance-corridor rule listing the typology
    assert find(
        context(graph_cases.small_intl(), signals=weak), "corridor_beneficiaries"
    ).is_empty()
    other = graph_cases.cse_signal("SENDER", typology="fan_in")
    assert find(
        context(graph_cases.small_intl(), signals=other), "corridor_beneficiaries"
    ).is_empty()


def test_funnel_names_the_account_and_its_beneficiary() -> None:
    hits = find(graph_cases.funnel(), "funnel")
    check_shape(hits)
    assert roles(hits) == {"F": "funnel", "BEN": "beneficiary"}  # PAL took under a tenth
    ev = evidence(hits)
    assert (ev["n_deposits"], ev["n_locations"], ev["cash_amount"]) == (4, 4, 10000.0)
    assert ev["flow_through"] == 0.95 and ev["funnel"] == "F"
    assert hits["txn_ids"][0].to_list() == ["D0", "D1", "D2", "D3", "WIRE", "TIP"]


def test_funnel_near_misses() -> None:
    assert find(graph_cases.funnel(locations=2), "funnel").is_empty()  # one or two branches
    assert find(graph_cases.funnel(kept=True), "funnel").is_empty()  # the cash stays: savings
    assert find(graph_cases.funnel(kind="business"), "funnel").is_empty()  # a shop's takings
    assert not find(
        graph_cases.funnel(kind="business"), "funnel", {"business_accounts": 1}
    ).is_empty()
    assert find(graph_cases.funnel(days_apart=3), "funnel").is_empty()  # over nine days
    bare = graph_cases.funnel()
    bare.transactions = bare.transactions.with_columns(pl.lit(None, pl.String).alias("location_id"))
    assert find(bare, "funnel").is_empty()  # no locations in the data


def test_funnel_window_rolls_across_calendar_weeks() -> None:
    """Deposits on days 5 to 8 fall into two tumbling weeks (two each), but into one rolling
    window: the funnel is found whole."""
    ctx = graph_cases.funnel(days_apart=1)
    shifted = ctx.transactions.with_columns(pl.col("ts") + timedelta(days=5))
    hits = find(GraphContext(shifted, ctx.accounts, pl.DataFrame(), ctx.signals), "funnel")
    assert evidence(hits)["n_deposits"] == 4


def test_party_structuring_found_over_two_accounts() -> None:
    hits = find(graph_cases.structurer(), "party_structuring")
    check_shape(hits)
    assert roles(hits) == {"A0": "depositor", "A1": "depositor"}
    ev = evidence(hits)
    assert (ev["n_deposits"], ev["n_accounts"], ev["total_amount"]) == (4, 2, 38000.0)
    assert ev["party"] == "P1" and ev["max_amount"] == 9500.0


def test_party_structuring_near_misses() -> None:
    assert find(
        graph_cases.structurer(same_party=False), "party_structuring"
    ).is_empty()  # two people
    assert find(
        graph_cases.structurer(amount=7000), "party_structuring"
    ).is_empty()  # not near 10,000
    assert find(graph_cases.structurer(amount=10_000), "party_structuring").is_empty()  # reported
    assert find(
        graph_cases.structurer(days_apart=4), "party_structuring"
    ).is_empty()  # over 12 days
    one = graph_cases.structurer(same_party=False)
    solo = find(one, "party_structuring", {"min_accounts": 1, "min_deposits": 2})
    assert set(solo["instance"].unique()) and set(solo["account_id"]) == {"A0", "A1"}
