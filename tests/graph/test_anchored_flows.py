"""The fan patterns of graph/fans.py and cycles of graph/flows.py found a partition of accounts at a time equal the whole
graph's (graph/anchored.py): on the labelled run with parameters that make them fire, and on
shapes built so that a partition reading only its reach would go wrong without the tables primed
from the whole graph (an intermediary's degree, a sender's outflow)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import graph_cases
import polars as pl
import pytest
from graph_rows import a, t
from polars.testing import assert_frame_equal

from flows87.pipeline.graph.anchored import Partition, anchored_in
from flows87.pipeline.graph.patterns import ANCHORED, PATTERNS, GraphContext, find
from flows87.schema import conform
from tests.graph.anchored_check import assert_same_by_partition, run_tables, whole_and_parts

FIRING: dict[str, dict[str, float]] = {
    "cycle": {"min_amount": 100, "min_ratio": 0.5},
    "scatter_gather": {"min_intermediaries": 2},
    "controller_hub": {"min_flagged_senders": 2, "min_share": 0.2},
    "many_to_one_beneficiary": {
        "min_senders": 4,
        "cross_border": 0,
        "max_cv": 1.0,
        "min_new_share": 0.0,
    },
}
"""Parameters with which each pattern finds several instances in the labelled run."""


@pytest.mark.parametrize("name", sorted(FIRING))
@pytest.mark.parametrize("partitions", [3, 4])
def test_fans_a_partition_at_a_time(labelled_run: Path, name: str, partitions: int) -> None:
    tx, accounts, features, prior = run_tables(labelled_run)
    whole = assert_same_by_partition(
        tx, accounts, features, prior, name, FIRING[name], partitions=partitions
    )
    assert whole["instance"].n_unique() >= 2, name


def test_fans_in_a_context_holding_every_anchored_reach(labelled_run: Path) -> None:
    """The stage gives a partition the union of its rules' reaches (stages/graph_groups._near):
    rows another pattern brought must not change these patterns' instances."""
    tx, accounts, features, prior = run_tables(labelled_run)
    p = Partition(1, 4)
    every = pl.lit(False)
    for spec in ANCHORED.values():
        every = every | spec.reach(tx.lazy(), accounts, p)
    near = tx.filter(every)
    assert near.height < tx.height
    for name, overrides in FIRING.items():
        values, spec = {**PATTERNS[name].params, **overrides}, ANCHORED[name]
        whole = find(GraphContext(tx, accounts, features, prior), name, overrides)
        ctx = GraphContext(near, accounts, features, prior)
        if spec.prime is not None:
            spec.prime(tx.lazy(), ctx, values)
        mine = anchored_in(find(ctx, name, overrides), spec, p)
        assert mine.height > 0, name
        assert_frame_equal(mine, anchored_in(whole, spec, p))


def _tables_of(
    rows: list[dict[str, Any]], flagged: list[str] | None = None
) -> tuple[pl.DataFrame, ...]:
    """transactions, accounts, features (every account: the population), prior signals."""
    tx = conform(pl.DataFrame(rows, infer_schema_length=None), "transactions").collect()
    ids = sorted(set(tx["src_account"]) | set(tx["dst_account"]))
    accounts = conform(
        pl.DataFrame([a(x) for x in ids], infer_schema_length=None), "accounts"
    ).collect()
    features = pl.DataFrame({"account_id": ids})
    return tx, accounts, features, graph_cases.signals(flagged or [])


def _scatter_with_a_busy_intermediary() -> list[dict[str, Any]]:
    """Two scatter-gathers (A -> X0..X3 -> B, C -> Y0..Y2 -> D); X3 is paid by 40 friends, so
    it is no little-used account: A's partition reads X3's payments out, not its friends'."""
    rows = graph_cases.scatter(xs=4)
    rows += [t(f"c{i}", i, "C", f"Y{i}", 500) for i in range(3)]
    rows += [t(f"d{i}", 20 + i, f"Y{i}", "D", 450) for i in range(3)]
    rows += [t(f"p{i}", 50 + i, f"friend{i}", "X3", 20, "p2p") for i in range(40)]
    return rows


def _controllers() -> list[dict[str, Any]]:
    """Hubs H0 and H1 take 80 of each 100 their flagged senders pay out; H2 takes 40 (its
    senders spend the rest by card), which only the senders' whole outflow shows."""
    rows = []
    for h, to_hub in enumerate((80, 80, 40)):
        for i in range(3):
            s = f"S{h}{i}"
            rows.append(t(f"h{h}{i}", i, s, f"H{h}", to_hub, "p2p"))
            rows.append(t(f"o{h}{i}", i + 1, s, f"shop{h}{i}", 100 - to_hub, "card"))
    return rows


@pytest.mark.parametrize(
    ("name", "rows", "flagged"),
    [
        ("scatter_gather", _scatter_with_a_busy_intermediary(), []),
        ("controller_hub", _controllers(), [f"S{h}{i}" for h in range(3) for i in range(3)]),
    ],
    ids=["busy-intermediary", "controller-outflow"],
)
def test_tables_of_the_whole_graph_are_primed(
    name: str, rows: list[dict[str, Any]], flagged: list[str]
) -> None:
    """Equal with the prime; without it a partition finds what the whole graph does not (X3
    as an intermediary, H2 as a controller): the prime is what makes the two agree."""
    tx, accounts, features, prior = _tables_of(rows, flagged)
    whole = assert_same_by_partition(tx, accounts, features, prior, name, partitions=4)
    assert whole["instance"].n_unique() == 2, whole
    with pytest.MonkeyPatch.context() as m:
        m.setitem(ANCHORED, name, dataclasses.replace(ANCHORED[name], prime=None))
        _, union, _ = whole_and_parts(tx, accounts, features, prior, name, partitions=4)
    assert not union.equals(whole)


def _rings(repeats: int = 4) -> list[dict[str, Any]]:
    """Accounts R0..R4 paying one another round and round every few hours (many cycles of each
    origin), and two plain round trips A -> B -> C -> A and D -> E -> F -> G -> D."""
    rows, n = [], 0
    for r in range(repeats):
        for i in range(5):
            for step in (1, 2):
                src, dst = f"R{i}", f"R{(i + step) % 5}"
                rows.append(t(f"r{n:03d}", 3 * r + 0.1 * i + step, src, dst, 1000 - n))
                n += 1
    for trip, hours in ((["A", "B", "C"], 1.0), (["D", "E", "F", "G"], 2.0)):
        for i, src in enumerate(trip):
            dst = trip[(i + 1) % len(trip)]
            rows.append(t(f"{src}{dst}", hours + 5 * i, src, dst, 900 - 10 * i))
    return rows


def test_cycles_a_partition_at_a_time_with_the_budget_binding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each origin account's paths are cut on its own (`max_paths_per_origin`), so a partition
    finds what the whole graph does even when the cut binds; without the primed transfers a
    partition, reading only its accounts' own transfers, misses cycles."""
    tx, accounts, features, prior = _tables_of(_rings())
    free = assert_same_by_partition(tx, accounts, features, prior, "cycle", partitions=4)
    cut = assert_same_by_partition(
        tx, accounts, features, prior, "cycle", {"max_paths_per_origin": 2}, partitions=4
    )
    assert cut["instance"].n_unique() >= 2 and not cut.equals(free)
    # the plain round trips are found whatever the ring does
    assert {"A", "D"} <= set(cut.filter(pl.col("role") == "origin")["account_id"])
    monkeypatch.setitem(ANCHORED, "cycle", dataclasses.replace(ANCHORED["cycle"], prime=None))
    _, union, _ = whole_and_parts(
        tx, accounts, features, prior, "cycle", {"max_paths_per_origin": 2}, partitions=4
    )
    assert not union.equals(cut)
