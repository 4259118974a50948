"""The plan both runners follow: well formed, and its hand-overs the same in memory and on disk."""

from __future__ import annotations

import inspect
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from flows87.io import write_parquet
from flows87.pipeline.job import Job
from flows87.pipeline.plan import (
    PLAN,
    STAGES,
    dag_plan,
    seconds_by_stage,
    stage_of,
    upto,
)
from flows87.pipeline.stages.config import RunConfig
from flows87.rundir import RunDir


def test_every_step_waits_only_for_earlier_steps_and_resolves_to_its_function() -> None:
    seen: set[str] = set()
    for step in PLAN:
        assert set(step.after) <= seen, f"{step.name} waits for a later or unknown step"
        seen.add(step.name)
        params = list(inspect.signature(step.function()).parameters)
        assert params == (["job", "part"] if step.per_part else ["job"]), step.name
    assert len(seen) == len(PLAN), "two steps share a name"
    assert [s.name for s in PLAN if s.scheduled_only] == ["publish"]


def test_every_step_is_reachable_from_read_and_leads_to_report() -> None:
    after = {s.name: set(s.after) for s in PLAN}

    def ancestors(name: str) -> set[str]:
        out = set(after[name])
        for a in after[name]:
            out |= ancestors(a)
        return out

    assert ancestors("report") | {"report"} == {s.name for s in PLAN} - {"publish"}


def test_records_map_to_their_stage_and_partitions_add_up() -> None:
    assert stage_of("read") == stage_of("gate_raw") == "ingest"
    assert stage_of("features-0002") == stage_of("gate_features") == "features"
    assert stage_of("rules") == stage_of("rules-0000") == "rules"  # merge_rules records as rules
    assert stage_of("signals") == "signals" and stage_of("no-such-thing") is None
    secs = seconds_by_stage(
        [("read", 1.0), ("gate_raw", 2.0), ("features-0000", 0.5), ("features-0001", 0.25)]
    )
    assert secs == {"ingest": 3.0, "features": 0.75}
    assert STAGES[0] == "ingest" and STAGES[-1] == "publish"
    assert [s.name for s in upto("gate_raw")] == ["read", "gate_raw"]


def test_hand_over_keeps_in_memory_in_process_and_writes_between_tasks(tmp_path: Path) -> None:
    frame = pl.DataFrame({"a": [1, 2, 3]})
    local = Job.local(tmp_path / "local")
    target = local.run.part("features", 0)
    local.hand_over(target, frame, write_parquet)
    assert not target.exists()  # nothing written in one process
    assert_frame_equal(local.take(target, pl.read_parquet), frame)
    assert local.memo == {}  # taken once: the memory is released

    task = Job(RunDir(tmp_path / "task"), RunConfig())  # an Airflow task: no memo
    path = task.run.part("features", 0)
    task.hand_over(path, frame, write_parquet)
    assert path.exists()
    assert_frame_equal(task.take(path, pl.read_parquet), frame)


def test_the_dag_runs_the_graph_stage_as_tasks_per_partition() -> None:
    from flows87.pipeline.graph.patterns import ANCHORED, LINKED, PATTERNS

    # every pattern is found a partition at a time: no task holds the whole graph
    assert sorted([*ANCHORED, *LINKED]) == sorted(PATTERNS)
    steps = dag_plan()
    names = [s.name for s in steps]
    assert "graph" not in names and {"graph_part", "merge_graph"} <= set(names)
    seen: set[str] = set()
    for step in steps:
        assert set(step.after) <= seen, f"{step.name} waits for a later or unknown step"
        seen.add(step.name)
        params = list(inspect.signature(step.function()).parameters)
        expected = (
            ["job", "part"] if step.per_part else ["job", "piece"] if step.per_input else ["job"]
        )
        assert params == expected, step.name
    # everything else is PLAN's, in PLAN's order
    added = ("list_inputs", "read_file", "gate_accounts", "gate_file")
    added += ("graph_prime", "graph_part", "merge_graph")
    added += ("group_cases", "score_accounts", "merge_cases")
    assert [n for n in names if n not in added] == [
        s.name for s in PLAN if s.name not in ("read", "graph", "cases")
    ]
    assert "cases" not in names and stage_of("score_accounts-0001") == "cases"
    assert next(s for s in steps if s.name == "learn").after == ("merge_cases",)
    assert stage_of("graph") == "graph"  # merge_graph records as the graph stage
    assert stage_of("graph_part-0003") == "graph"
    # the read: a task per input file, the accounts gate, the transactions gate's checks a task
    # per file, then the raw gate merging them into the gate on their union
    assert names[:5] == ["list_inputs", "read_file", "gate_accounts", "gate_file", "gate_raw"]
    assert [s.after for s in steps[:5]] == [
        (),
        ("list_inputs",),
        ("read_file",),
        ("gate_accounts",),
        ("gate_file",),
    ]
    assert stage_of("read_file-0002") == "ingest" and steps[1].per_input and steps[3].per_input
    assert stage_of("gate_file-0002") == stage_of("gate_accounts") == "ingest"
