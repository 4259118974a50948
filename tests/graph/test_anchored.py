"""Anchored patterns found a partition of accounts at a time (graph/anchored.py) equal the
pattern on the whole graph, and the graph stage run as tasks (the shared primes, a task per
partition, the merge) writes what the one-process stage writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.pipeline.graph import fans, parties
from flows87.pipeline.graph.context import GraphContext
from flows87.pipeline.graph.patterns import ANCHORED
from flows87.pipeline.job import Job
from flows87.pipeline.plan import PLAN
from flows87.pipeline.run import run_steps
from flows87.pipeline.stages import graph_groups
from flows87.pipeline.stages.config import RunConfig
from flows87.pipeline.stages.parts import assign
from flows87.rundir import RunDir
from tests.graph.anchored_check import assert_same_by_partition, run_tables

FIRING: dict[str, dict[str, float]] = {
    "fan_in": {"min_counterparties": 4, "min_flow_through": 0.3},
    "fan_out": {"min_counterparties": 4, "min_flow_through": 0.3, "business_hubs": 1},
}
"""Parameters with which each anchored pattern finds instances in the labelled run (so that the
comparison compares something); patterns not listed fire with their defaults."""


@pytest.mark.parametrize("name", sorted(ANCHORED))
def test_a_partition_at_a_time_finds_what_the_whole_graph_gives(
    labelled_run: Path, name: str
) -> None:
    """Every anchored pattern, with its defaults (and with FIRING's parameters, which make it
    fire here: each module's own test_anchored_*.py makes the others fire on data of theirs)."""
    tx, accounts, features, prior = run_tables(labelled_run)
    assert_same_by_partition(tx, accounts, features, prior, name)
    if name in FIRING:
        whole = assert_same_by_partition(tx, accounts, features, prior, name, FIRING[name])
        assert whole["instance"].n_unique() >= 2, name


def test_graph_tasks_by_partition_write_what_one_process_writes(
    labelled_run: Path, tmp_path: Path
) -> None:
    one, tasks = tmp_path / "one", tmp_path / "tasks"
    for run in (one, tasks):
        shutil.copytree(labelled_run, run)
    # the catalogue's rules with the lowered thresholds, so anchored rules fire
    config = RunConfig(rule_overrides={f"ml_{k}": v for k, v in FIRING.items()})
    run_steps(Job.local(one, config), [s for s in PLAN if s.stage == "graph"])
    job = Job(RunDir(tasks), config, command="dag")
    tx = pl.read_parquet(tasks / "transactions.parquet", columns=["src_account", "dst_account"])
    ids = pl.concat([pl.read_parquet(tasks / "accounts.parquet")["account_id"], *tx])
    assign(ids, 2).write_parquet(tasks / "partitions.parquet")
    stale = tasks / "parts" / "graph_prime-99.json"  # an earlier run's, with more contexts
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("[]")
    graph_groups.graph_prime(job)
    assert not stale.exists()
    primed = json.loads((tasks / "stages" / "graph_prime.json").read_text())["counts"]
    assert primed["tables"] >= 5  # infrastructure, intermediaries, outflows, identifiers...
    for part in reversed(range(2)):
        graph_groups.graph_part(job, part)
    assert not list((tasks / "parts").glob("graph_near-*"))  # each task's rows, removed
    # the patterns found on primed tables alone are looked for by the first partition only
    once = {r for r, spec in ANCHORED.items() if spec.once}
    assert once >= {"shared_identifiers", "onboarding_burst", "mule_network"}
    timed = [
        set(json.loads((tasks / "stages" / f"graph_part-{part:04d}.json").read_text())["timings"])
        for part in range(2)
    ]
    looked = {"id_shared_identifiers", "id_onboarding_burst", "ml_mule_network"}
    assert looked <= timed[0] and not looked & timed[1]
    graph_groups.merge_graph(job)
    for name in ("signals_graph.parquet", "signals_held_graph.parquet"):
        assert_frame_equal(pl.read_parquet(tasks / name), pl.read_parquet(one / name))
    expected = json.loads((one / "stages" / "graph.json").read_text())
    record = json.loads((tasks / "stages" / "graph.json").read_text())
    assert record["counts"] == expected["counts"]
    assert list(record["timings"]) == list(expected["timings"])
    fired = record["counts"]["fired"]
    assert all(fired.get(f"ml_{k}", 0) > 0 for k in FIRING), fired


def test_the_two_controller_patterns_memoise_their_outflows_apart(labelled_run: Path) -> None:
    """A partition's context serves every anchored pattern, a group's every pattern of its
    group: controller_hub and party_controller each memoise their flagged senders' outflow, and
    once did under one key, so the second read the first's senders as its own."""
    tx, accounts, features, prior = run_tables(labelled_run)
    senders = tx.select(pl.col("src_account").alias("src")).unique().sort("src")
    some, others = senders.head(20), senders.tail(20)
    alone_hub = fans.flagged_outflow(GraphContext(tx, accounts, features, prior), some)
    ctx = GraphContext(tx, accounts, features, prior)
    party = parties.flagged_outflow(ctx, ctx.transactions.lazy(), others)
    assert_frame_equal(fans.flagged_outflow(ctx, some), alone_hub, check_row_order=False)
    assert set(party["src"]) <= set(others["src"]) and party.height
