"""Labour patterns (flows87/pipeline/graph/labour.py): payroll recapture and workers sharing an
address."""

from __future__ import annotations

from typing import Any

import graph_cases
import pytest
from graph_rows import check_shape, evidence, roles

from flows87.pipeline.graph.patterns import find


def test_payroll_recapture_found() -> None:
    hits = find(graph_cases.payroll(recaptured=4), "payroll_recapture")
    check_shape(hits)
    assert roles(hits) == {
        "EMP": "employer",
        "W0": "worker",
        "W1": "worker",
        "W2": "worker",
        "W3": "worker",
        "BOSS": "recapturer",
    }
    ev = evidence(hits)
    assert ev["workers"] == 6 and ev["recapturing_workers"] == 4
    assert ev["employer"] == "EMP" and ev["recapturer"] == "BOSS"
    assert ev["share"] == pytest.approx(4 / 6, abs=1e-4) and ev["recaptured_fraction"] == 0.6
    assert set(hits["txn_ids"][0]) == {f"w{i}" for i in range(4)} | {f"k{i}" for i in range(4)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recaptured": 2},
        {"recaptured": 6, "delay_hours": 24 * 4},
        {"recaptured": 6, "common": False},
        {"recaptured": 6, "kind": "unknown"},
    ],
    ids=["few-workers", "too-late", "normal-rent", "no-kinds"],
)
def test_payroll_recapture_near_misses(kwargs: dict[str, Any]) -> None:
    assert find(graph_cases.payroll(**kwargs), "payroll_recapture").is_empty()


def test_shared_address_workers_found() -> None:
    hits = find(graph_cases.housed(sharing=5), "shared_address_workers")
    check_shape(hits)
    assert roles(hits) == {"EMP": "employer", **{f"W{i}": "worker" for i in range(5)}}
    ev = evidence(hits)
    assert ev["identifier"] == "address" and ev["value"] == "1 farm road"
    assert ev["payees"] == 7 and ev["sharing"] == 5 and ev["total_amount"] == 4500


def test_shared_address_workers_near_misses() -> None:
    assert find(graph_cases.housed(sharing=4), "shared_address_workers").is_empty()
    assert find(graph_cases.housed(sharing=7, same_party=True), "shared_address_workers").is_empty()
