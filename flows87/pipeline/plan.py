"""The pipeline's plan: its steps in order, what each waits for, and which fan out per partition.

One list drives both ways of running it: the Airflow DAG makes a task of each step (a
per-partition step is mapped over the partitions), and `flows87 run` calls the same steps in this
order in one process, with one partition. Steps are named by import path so that the DAG
processor, which parses the DAG file every few seconds, never imports polars.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Step:
    name: str
    target: str
    """module:function, called as function(job) or, per partition, function(job, part)."""
    after: tuple[str, ...] = ()
    per_part: bool = False
    stage: str = ""
    """The stage it belongs to, for timings by stage (run.json's stage_seconds)."""
    io: bool = False
    """Touches storage outside the run directory: worth retrying (the DAG gives it retries)."""
    scheduled_only: bool = False
    """Only for scheduled runs (publishing an interval's cases); `flows87 run` stops before."""
    per_input: bool = False
    """Mapped over the pieces of the input the `list_inputs` step returns (a task per input
    file), called function(job, piece): the DAG's read (`dag_plan`)."""
    record: str = ""
    """The name of its RUN/stages/<record>.json when not its own: a merge step records under
    its stage's name (what the report and the flood ceiling's records read); a partition's
    record is "<name>-<part>"."""

    @property
    def record_name(self) -> str:
        return self.record or self.name

    def function(self) -> Callable[..., Any]:
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


S = "flows87.pipeline.stages."
PLAN: tuple[Step, ...] = (
    Step("read", S + "ingest:read", stage="ingest", io=True),
    Step("gate_raw", S + "ingest:gate_raw", ("read",), stage="ingest"),
    Step("resolve", S + "resolve:resolve", ("gate_raw",), stage="resolve"),
    Step("partition", S + "features:partition", ("resolve",), stage="features"),
    Step("features", S + "features:features", ("partition",), True, "features"),
    Step("gate_features", S + "features:gate_features", ("features",), stage="features"),
    Step("rules", S + "rules:rules", ("gate_features",), True, "rules"),
    Step("merge_rules", S + "rules:merge_rules", ("rules",), stage="rules", record="rules"),
    Step("graph", S + "rules:graph", ("merge_rules",), stage="graph"),
    Step("fit_detectors", S + "detectors:fit_detectors", ("gate_features",), stage="detectors"),
    Step("detectors", S + "detectors:detectors", ("fit_detectors",), True, "detectors"),
    Step(
        "combine_detectors",
        S + "detectors:combine",
        ("detectors",),
        stage="detectors",
        record="detectors",
    ),
    Step(
        "gate_signals",
        S + "signals:gate_signals",
        ("graph", "combine_detectors"),
        stage="signals",
        record="signals",
    ),
    Step("cases", S + "cases:cases", ("gate_signals",), stage="cases"),
    Step("learn", S + "learn:learn_step", ("cases",), stage="learn"),
    Step("report", S + "report:report", ("learn",), stage="report"),
    Step(
        "publish",
        S + "publish:publish",
        ("report",),
        stage="publish",
        io=True,
        scheduled_only=True,
    ),
)

GRAPH_TASKS: tuple[Step, ...] = (
    Step("graph_prime", S + "graph_groups:graph_prime", ("merge_rules",), stage="graph"),
    Step("graph_part", S + "graph_groups:graph_part", ("graph_prime",), True, "graph"),
    Step(
        "merge_graph",
        S + "graph_groups:merge_graph",
        ("graph_part",),
        stage="graph",
        record="graph",
    ),
)
"""The DAG's graph stage: the tables every partition derives from the whole graph, once; a task
per partition, each reading the transactions near its accounts and finding the instances
anchored at them and the links through them (graph/anchored.py); then the merge joining the
links into layering chains and writing what the `graph` step writes (tested equal)."""


READ_TASKS: tuple[Step, ...] = (
    Step("list_inputs", S + "ingest_files:list_inputs", stage="ingest", io=True, record="read"),
    Step(
        "read_file",
        S + "ingest_files:read_file",
        ("list_inputs",),
        stage="ingest",
        io=True,
        per_input=True,
    ),
    Step("gate_accounts", S + "ingest_files:gate_accounts", ("read_file",), stage="ingest"),
    Step(
        "gate_file",
        S + "ingest_files:gate_file",
        ("gate_accounts",),
        stage="ingest",
        per_input=True,
    ),
)
"""The DAG's read and raw gate: a task per input file (a canonical input's transactions in
several files; any other input is one), each staging its piece; the accounts gate on their
union; a task per file running the transactions gate's checks on its rows; then `gate_raw`
merging the files' gates into the gate on their union (quality/pieces.py) and publishing the
tables (stages/ingest_files.py). `flows87 run` keeps the one `read` step and its gate."""


CASES_TASKS: tuple[Step, ...] = (
    Step("group_cases", S + "cases_parts:group_cases", ("gate_signals",), stage="cases"),
    Step("score_accounts", S + "cases_parts:score_accounts", ("group_cases",), True, "cases"),
    Step(
        "merge_cases",
        S + "cases_parts:merge_cases",
        ("score_accounts",),
        stage="cases",
        record="cases",
    ),
)
"""The DAG's cases stage: the cases grouped once from every signal (connected components are
global; their input is small), every account ranked a task per partition from the transactions
touching its accounts, then the merge writing what the `cases` step writes (tested equal)."""


def dag_plan() -> tuple[Step, ...]:
    """PLAN as the DAG runs it: the read, graph and cases steps replaced by READ_TASKS,
    GRAPH_TASKS and CASES_TASKS, so input files are read and gated, and patterns and accounts
    scored, on as many workers as there are free. `flows87 run` keeps the one `read` step and
    its gate (in one process the read input goes to the gate in memory), and with one
    partition the one `graph` and `cases` steps: the graph then reads the transactions once
    (and groups them itself above a size)."""
    return _split(("read", "graph", "cases"))


def local_plan(partitions: int) -> tuple[Step, ...]:
    """PLAN as `flows87 run` follows it: with more than one partition, its graph and cases steps
    as the DAG's tasks, a partition after another, so those stages hold one partition's
    transactions at a time instead of every one (at 50M the one graph step peaked at 20 GB)."""
    return PLAN if partitions <= 1 else _split(("graph", "cases"))


def _split(stages: tuple[str, ...]) -> tuple[Step, ...]:
    """PLAN with the steps of `stages` replaced by their tasks."""
    out: list[Step] = []
    instead = {"read": "gate_file", "graph": "merge_graph", "cases": "merge_cases"}
    instead = {k: v for k, v in instead.items() if k in stages}
    tasks = {"read": READ_TASKS, "graph": GRAPH_TASKS, "cases": CASES_TASKS}
    tasks = {k: v for k, v in tasks.items() if k in stages}
    for s in PLAN:
        if s.name in tasks:
            out.extend(tasks[s.name])
        else:
            out.append(replace(s, after=tuple(instead.get(a, a) for a in s.after)))
    return tuple(out)


STEPS = {s.name: s for s in (*PLAN, *READ_TASKS, *GRAPH_TASKS, *CASES_TASKS)}
STAGES = tuple(dict.fromkeys(s.stage for s in PLAN))
"""ingest, resolve, features, rules, graph, detectors, signals, cases, report, publish."""


def step(name: str) -> Step:
    return STEPS[name]


def upto(last: str) -> tuple[Step, ...]:
    """The steps up to and including `last`, in plan order (e.g. `flows87 ingest`)."""
    names = [s.name for s in PLAN]
    return PLAN[: names.index(last) + 1]


RECORDS = {s.record_name: s for s in PLAN}


def stage_of(record: str) -> str | None:
    """The stage of a record name (a partition's record is "<step>-<part>")."""
    found = RECORDS.get(record) or STEPS.get(record)  # a task's own record (graph_prime)
    if found is None and "-" in record:
        found = STEPS.get(record.rsplit("-", 1)[0])
    return found.stage if found is not None else None


def seconds_by_stage(records: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Each stage's seconds, summed over its steps' records (partitions included)."""
    out: dict[str, float] = {}
    for name, seconds in records:
        stage = stage_of(name)
        if stage is not None:
            out[stage] = round(out.get(stage, 0.0) + float(seconds), 3)
    return out
