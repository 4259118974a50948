"""Stage 4, the graph patterns, in one step or as one task per partition and a merge.

`run_graph` is the whole stage in one process: one context over every pattern below
GRAPH_GROUP_ROWS transactions, group after group above it (graph/groups.py). `graph_part` and
`merge_graph` are the same work as tasks: each partition finds the instances anchored at its
accounts and the pieces (links) of the patterns whose instances span partitions
(graph/anchored.py), and the merge joins the pieces and writes what `run_graph` writes
(tests/graph/test_anchored.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError
from flows87.io import read_json, write_json, write_parquet
from flows87.pipeline.features import FeatureSettings
from flows87.pipeline.graph.anchored import Partition, Reach, anchored_in
from flows87.pipeline.graph.context import (
    ACCOUNT_COLUMNS,
    TRANSFER,
    TX_COLUMNS,
    GraphContext,
    graph_columns,
    graph_order,
    read_in_graph_order,
)
from flows87.pipeline.graph.grouped import run_grouped
from flows87.pipeline.graph.groups import GROUP_OF, Group
from flows87.pipeline.graph.hits import HIT_SCHEMA, empty_hits
from flows87.pipeline.graph.patterns import ANCHORED, LINKED, PATTERNS
from flows87.pipeline.job import Job
from flows87.pipeline.rules import empty_signals, load_rules, run_rules
from flows87.pipeline.rules.ceiling import Ceiling, summary_lines
from flows87.pipeline.rules.engine import RuleRun
from flows87.pipeline.rules.model import Rule
from flows87.pipeline.runinfo import StageRecord, stage
from flows87.pipeline.stages import parts
from flows87.pipeline.stages.common import (
    GRAPH_FEATURE_COLUMNS,
    feature_settings,
    free_memory,
    origin,
    read_columns,
)

GRAPH_GROUP_ROWS = 8_000_000
"""Above this many transactions the graph patterns run group by group (graph/groups.py), each
group's context holding only the transaction columns its patterns read and the tables they
derive, given back before the next group: at 20M transactions one context over all 19 patterns
peaked at 8.1 GB. Below it one context serves them all (the transfers' columns are read once)."""


@dataclass
class GraphInputs:
    """What every group's rules read besides the transactions."""

    chosen: list[Rule]
    features: pl.DataFrame
    accounts: pl.DataFrame
    prior: pl.DataFrame
    ceiling: Ceiling
    settings: FeatureSettings
    job: Job

    @classmethod
    def read(cls, job: Job) -> GraphInputs:
        from flows87.pipeline.stages.rules import run_ceiling

        config, run = job.config, job.run
        chosen = [r.rule for r in load_rules(config.rules_dir) if r.rule.scope == "graph"]
        feats = read_columns(run.features, set(GRAPH_FEATURE_COLUMNS))
        prior = empty_signals()
        if run.stage_signals("rules").exists():
            prior = pl.read_parquet(run.stage_signals("rules"))  # held-back ones are not in it
        return cls(
            chosen,
            feats,
            read_columns(run.accounts, set(ACCOUNT_COLUMNS)),
            prior,
            run_ceiling(feats, config),
            feature_settings(config),
            job,
        )

    def values(self, rule: Rule) -> dict[str, float]:
        """The rule's pattern parameters: the pattern's defaults, the rule's, the run's."""
        own = rule.values(self.job.config.rule_overrides.get(rule.id))
        return {**PATTERNS[str(rule.pattern)].params, **own}

    def run(
        self,
        tx: pl.DataFrame,
        rules: list[Rule],
        columns: tuple[str, ...],
        hits: dict[str, pl.DataFrame] | None = None,
    ) -> RuleRun:
        return run_rules(
            rules,
            self.features,
            tx,
            self.accounts,
            self.settings,
            origin(self.job),
            self.job.config.rule_overrides,
            prior=self.prior,
            ceiling=self.ceiling,
            graph_columns=columns,
            hits=hits,
            absent={} if hits is not None else None,  # graph rules are never skipped for it
        )


def run_graph(job: Job) -> tuple[GraphInputs, RuleRun]:
    """Every graph rule in this process: one context below GRAPH_GROUP_ROWS, groups above."""
    run = job.run
    given = GraphInputs.read(job)
    rows = pl.scan_parquet(run.transactions).select(pl.len()).collect().item()
    if rows <= GRAPH_GROUP_ROWS:
        # only what the patterns read (graph.context.TX_COLUMNS), read in the context's row
        # order a column at a time: the context keeps this frame instead of a copy
        tx = read_in_graph_order(run.transactions)
        return given, given.run(tx, given.chosen, TX_COLUMNS)
    order = graph_order(run.transactions)

    def one_group(group: Group, rules: list[Rule]) -> RuleRun:
        return given.run(
            read_in_graph_order(run.transactions, group.columns, order), rules, group.columns
        )

    return given, run_grouped(given.chosen, one_group, free_memory)


def write_graph(job: Job, rec: StageRecord, given: GraphInputs, result: RuleRun) -> dict[str, Any]:
    """The graph stage's outputs and record (the same whichever way it ran)."""
    from flows87.pipeline.stages.rules import _record_ceiling

    run = job.run
    rec.params = {"rules": [r.id for r in given.chosen], "overrides": job.config.rule_overrides}
    write_parquet(result.signals, run.stage_signals("graph"))
    write_parquet(result.held, run.stage_held("graph"))
    rec.counts = {
        "signals": result.signals.height,
        "held_back_signals": result.held.height,
        "fired": result.fired,
        "skipped": result.skipped,
    }
    rec.timings = result.seconds
    rec.warnings = result.warnings + summary_lines(result.held_back)
    _record_ceiling(rec, given.ceiling, result.held_back, result.relative)
    return {"signals": result.signals.height, "skipped": result.skipped}


@dataclass
class _Near:
    """Anchored rules that share one context: the transactions they read, and which columns."""

    rules: list[Rule]
    columns: tuple[str, ...]
    reach: Reach | None


def _reach(name: str) -> Reach:
    return ANCHORED[name].reach if name in ANCHORED else LINKED[name].reach


def _contexts(rules: list[Rule], p: Partition | None) -> list[_Near]:
    """The partitioned rules by the context they read: in a partition one per reach (the rows
    its anchors need), else one per pattern group over every row (as `run_graph`); each with
    only the transaction columns its patterns read, so a task holds one reach's rows and
    columns at a time, never the union of every pattern's."""
    out: dict[Any, _Near] = {}
    for rule in rules:
        name = str(rule.pattern)
        reach = _reach(name) if p is not None else None
        key = reach if p is not None else GROUP_OF[name].name
        near = out.setdefault(key, _Near([], (), reach))
        near.rules.append(rule)
        wanted = set(near.columns) | set(GROUP_OF[name].columns)
        near.columns = tuple(c for c in TX_COLUMNS if c in wanted)
    return list(out.values())


def _read(
    job: Job, near: _Near, accounts: pl.DataFrame, p: Partition | None, order: pl.Series | None
) -> pl.DataFrame:
    """The context's transactions: its reach's rows in a partition (streamed from the file),
    every row in graph order (`order`) otherwise; only its columns."""
    path = job.run.transactions
    if near.reach is None or p is None:
        return read_in_graph_order(path, near.columns, order)
    scan = pl.scan_parquet(path)
    cols = [c for c in graph_columns(list(pl.read_parquet_schema(path))) if c in near.columns]
    return scan.filter(near.reach(scan, accounts, p)).select(cols).collect(engine="streaming")


def _finds(rule: Rule, p: Partition | None) -> bool:
    """Whether partition `p` looks for the rule's instances (`Anchored.finds`)."""
    spec = ANCHORED.get(str(rule.pattern))
    return spec is None or spec.finds(p)


@dataclass
class _Found:
    """What a partition's task found: each anchored rule's hits (with `rule_id`), each linked
    rule's pieces (by rule id), the seconds per rule and the rows each context read."""

    hits: list[pl.DataFrame]
    pieces: dict[str, pl.DataFrame]
    seconds: dict[str, float]
    read: list[int]


def _primes(
    given: GraphInputs, near: _Near, ctx: GraphContext, scan: pl.LazyFrame, shared: bool
) -> dict[str, float]:
    """Run the primes of the context's rules that are (or are not) `shared` on `ctx`: the
    seconds of each rule's."""
    seconds = {}
    for rule in near.rules:
        spec = ANCHORED.get(str(rule.pattern))
        if spec is not None and spec.prime is not None and spec.shared_prime == shared:
            t0 = time.perf_counter()
            spec.prime(scan, ctx, given.values(rule))
            seconds[rule.id] = time.perf_counter() - t0
    return seconds


OWN_ROWS = ("transfers", "transfers_by_time")
"""Memoised kinds (graph/context.py `GraphContext.memo`) made from a context's own rows: a
prime computed on a context of no rows may touch them, and they are never handed on."""


def _primed(job: Job, context: int) -> Path:
    return job.run.parts / f"graph_prime-{context:02d}.json"


def graph_prime(job: Job) -> dict[str, Any]:
    """The tables the partitions' patterns derive from the whole graph (`Anchored.prime` with
    `shared_prime`), computed once for every partition: each reads only the run's accounts,
    features and signals besides every transaction, the same in every partition. With one
    partition nothing is primed (its patterns read every row)."""
    free_memory()
    with stage(job.run, "graph_prime") as rec:
        given = GraphInputs.read(job)
        count = parts.count(job)
        rules = [r for r in given.chosen if r.status != "deprecated"]
        contexts = _contexts(rules, Partition(0, count)) if count > 1 else []
        path = job.run.transactions
        cols = graph_columns(list(pl.read_parquet_schema(path)))
        scan, tables, seconds = pl.scan_parquet(path), 0, {}
        job.run.parts.mkdir(parents=True, exist_ok=True)
        for old in job.run.parts.glob("graph_prime-*"):  # an earlier run's of the interval
            old.unlink()
        for i, near in enumerate(contexts):
            # a context of no rows, with the columns a partition's has: a prime reads its
            # accounts, features, signals and the schema, never its rows
            empty = pl.read_parquet(path, columns=[c for c in cols if c in near.columns], n_rows=0)
            ctx = GraphContext(empty, given.accounts, given.features, given.prior, near.columns)
            seconds.update(_primes(given, near, ctx, scan, shared=True))
            made = ctx.memoised()
            keys = sorted(k for k in made if k.split(":", 1)[0] not in OWN_ROWS)
            for k, key in enumerate(keys):
                write_parquet(made[key], _primed(job, i).with_suffix(f".{k:03d}.parquet"))
            write_json(keys, _primed(job, i))
            tables += len(keys)
            free_memory()
        rec.counts = {"contexts": len(contexts), "tables": tables}
        rec.timings = {k: round(v, 3) for k, v in seconds.items()}
    return {"tables": tables}


def _load_primes(job: Job, context: int, ctx: GraphContext) -> None:
    """The shared primes of the partitions' context number `context` (`graph_prime`)."""
    for k, key in enumerate(read_json(_primed(job, context))):
        ctx.memo(
            key, partial(pl.read_parquet, _primed(job, context).with_suffix(f".{k:03d}.parquet"))
        )


def _find(
    job: Job,
    given: GraphInputs,
    number: int,
    near: _Near,
    p: Partition | None,
    order: pl.Series | None,
    found: _Found,
) -> None:
    """One context's rules in `p` (`number`: the context's place in `_contexts`): the hits
    anchored in it, the pieces of its accounts."""
    tx = _read(job, near, given.accounts, p, order)
    found.read.append(tx.height)
    ctx = GraphContext(tx, given.accounts, given.features, given.prior, near.columns)
    del tx
    scan = pl.scan_parquet(job.run.transactions)
    values = {r.id: given.values(r) for r in near.rules}
    seconds = found.seconds
    # every table derived from the whole graph first (those of every partition once, by
    # `graph_prime`): none of the patterns then makes one of them from the partition's rows
    if p is not None:
        _load_primes(job, number, ctx)
        seconds.update(_primes(given, near, ctx, scan, shared=False))
    for rule in near.rules:
        if not _finds(rule, p):
            continue
        t0 = time.perf_counter()
        name, tag = str(rule.pattern), pl.lit(rule.id).alias("rule_id")
        if name in LINKED:
            found.pieces[rule.id] = LINKED[name].pieces(ctx, values[rule.id], p)
        else:
            hits = PATTERNS[name].fn(ctx, values[rule.id])
            hits = anchored_in(
                hits.select(list(HIT_SCHEMA.names())).cast(HIT_SCHEMA), ANCHORED[name], p
            )
            found.hits.append(hits.select(tag, pl.all()))
        seconds[rule.id] = round(seconds.get(rule.id, 0.0) + time.perf_counter() - t0, 3)


def graph_part(job: Job, part: int) -> dict[str, Any]:
    """The hits of the anchored patterns' instances (graph/anchored.py) whose anchor is one of
    the partition's accounts, found on the transactions near them, and the linked patterns'
    pieces of its accounts, for `merge_graph`."""
    free_memory()
    with stage(job.run, f"graph_part-{part:04d}") as rec:
        given = GraphInputs.read(job)
        rules = [r for r in given.chosen if r.status != "deprecated"]
        count = parts.count(job)
        if not 0 <= part < count:
            raise InputError(f"no partition {part}: this run has {count}", file=job.run.partitions)
        p = Partition(part, count) if count > 1 else None
        found = _Found([], {}, {}, [])
        contexts = _contexts(rules, p)
        # one partition: every context reads every row, in the graph order computed once
        order = graph_order(job.run.transactions) if p is None and contexts else None
        for number, near in enumerate(contexts):
            if any(_finds(r, p) for r in near.rules):
                _find(job, given, number, near, p, order, found)
                free_memory()
        empty = empty_hits().select(pl.lit("").alias("rule_id"), pl.all()).head(0)
        out = pl.concat([empty, *found.hits])
        job.run.parts.mkdir(parents=True, exist_ok=True)
        write_parquet(out, job.run.part("graph_hits", part))
        for rule_id, pieces in found.pieces.items():
            write_parquet(pieces, _pieces(job, rule_id, part))
        write_json(found.seconds, job.run.part("graph_hits", part).with_suffix(".json"))
        # the largest context's rows bound the task's memory; every context's, its reading
        rec.counts = {"transactions_read": max(found.read, default=0), "contexts": found.read}
        rec.counts["hits"] = out.height
        rec.counts["pieces"] = sum(f.height for f in found.pieces.values())
        rec.timings = found.seconds
    return {"part": part, "hits": out.height}


def _pieces(job: Job, rule_id: str, part: int) -> Any:
    return job.run.parts / f"graph_pieces-{rule_id}-{part:04d}.parquet"


def _transfers(job: Job) -> int:
    """The run's account-to-account transfers, counted streaming."""
    scan = pl.scan_parquet(job.run.transactions).filter(TRANSFER)
    return int(scan.select(pl.len()).collect(engine="streaming").item())


def _partitioned_run(job: Job, given: GraphInputs) -> RuleRun:
    """The graph rules' signals from every partition's work (`graph_part`): each anchored
    instance is in one partition's hits, and sorting by instance (stably) restores the
    pattern's order; a linked pattern's instances are made from every partition's pieces."""
    rules = given.chosen
    files = parts.paths(job, "graph_hits")
    every = pl.concat([pl.read_parquet(f) for f in files])
    hits: dict[str, pl.DataFrame] = {}
    seconds: dict[str, float] = {}
    transfers = None
    for r in rules:
        name = str(r.pattern)
        if name not in LINKED:
            hits[r.id] = (
                every.filter(pl.col("rule_id") == r.id)
                .drop("rule_id")
                .sort("instance", maintain_order=True)
            )
            continue
        if r.status == "deprecated":
            continue
        t0 = time.perf_counter()
        transfers = _transfers(job) if transfers is None else transfers
        pieces = pl.concat(
            [pl.read_parquet(_pieces(job, r.id, part)) for part in range(len(files))]
        )
        found = LINKED[name].join(pieces, given.values(r), transfers)
        hits[r.id] = found.select(list(HIT_SCHEMA.names())).cast(HIT_SCHEMA)
        seconds[r.id] = time.perf_counter() - t0
    result = given.run(pl.DataFrame(), rules, TX_COLUMNS, hits=hits)
    for f in files:  # the patterns' time in the partitions, not the merge's rendering
        for rule_id, spent in read_json(f.with_suffix(".json")).items():
            seconds[rule_id] = seconds.get(rule_id, 0.0) + spent
    for rule_id, spent in seconds.items():
        result.seconds[rule_id] = round(result.seconds.get(rule_id, 0.0) + spent, 3)
    return result


def merge_graph(job: Job) -> dict[str, Any]:
    """The results of `graph_part` of every partition as the graph stage's outputs, in rule
    order: what `run_graph` writes."""
    given = GraphInputs.read(job)
    with stage(job.run, "graph") as rec:  # its time: the layering chains grown here, the signals
        result = _partitioned_run(job, given) if given.chosen else RuleRun(empty_signals())
        return write_graph(job, rec, given, result)
