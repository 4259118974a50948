"""The graph stage group by group (graph/groups.py: each group's own context of only the
columns its patterns read, memoised tables released once no later pattern reads them) gives the
tables of one context over every pattern, with the threshold lowered so a small run groups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.pipeline.graph.context import TX_COLUMNS
from flows87.pipeline.graph.groups import GROUP_OF, GROUPS, MEMOS, still_read
from flows87.pipeline.graph.patterns import PATTERNS
from flows87.pipeline.job import Job
from flows87.pipeline.plan import PLAN
from flows87.pipeline.rules import load_rules
from flows87.pipeline.run import run_steps
from flows87.pipeline.stages import graph_groups
from flows87.pipeline.stages.config import RunConfig
from flows87.rundir import RunDir


def test_every_pattern_is_in_one_group() -> None:
    named = [p for g in GROUPS for p in g.patterns]
    assert sorted(named) == sorted(PATTERNS)
    assert set(MEMOS) <= set(PATTERNS)
    for g in GROUPS:
        assert set(g.columns) <= set(TX_COLUMNS)
    assert still_read(["cycle", "fan_in"]) == {"transfers", "transfers_by_time"}


def test_groups_give_the_tables_of_one_context(
    labelled_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = {}
    for name, limit in (("one", 10**12), ("grouped", 0), ("tasks", 10**12)):
        run = tmp_path / name
        shutil.copytree(labelled_run, run)
        monkeypatch.setattr(graph_groups, "GRAPH_GROUP_ROWS", limit)
        if name == "tasks":  # one partition's task (a context per group), then the merge
            job = Job(RunDir(run), RunConfig(), command="dag")
            graph_groups.graph_part(job, 0)
            graph_groups.merge_graph(job)
        else:
            run_steps(Job.local(run), [s for s in PLAN if s.stage == "graph"])
        runs[name] = run
    one = runs["one"]
    signals = pl.read_parquet(one / "signals_graph.parquet")
    # the test means something only if rules of several groups fired
    pattern = {r.rule.id: r.rule.pattern for r in load_rules(RunConfig().rules_dir)}
    fired = {GROUP_OF[str(pattern[i])].name for i in signals["signal_id"].unique()}
    assert len(fired) >= 2, fired
    expected = json.loads((one / "stages" / "graph.json").read_text())
    for other in (runs["grouped"], runs["tasks"]):
        for table in ("signals_graph.parquet", "signals_held_graph.parquet"):
            assert_frame_equal(pl.read_parquet(other / table), pl.read_parquet(one / table))
        record = json.loads((other / "stages" / "graph.json").read_text())
        assert record["counts"] == expected["counts"]
        assert list(record["timings"]) == list(expected["timings"])
        assert record["warnings"] == expected["warnings"]
        assert record["ceiling"] == expected["ceiling"]
