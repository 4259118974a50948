"""Stages 3 and 4: account and transaction rules per partition, merged under the flood ceiling;
then the graph patterns on the whole money graph.

Each partition's rules see only its accounts' features and the transactions touching them,
with relative thresholds resolved on the whole population. `merge_rules` holds back, over the
whole population, any rule flagging more accounts than the flood ceiling allows (see
rules/ceiling.py), so the graph patterns that read flags (a controller receives from flagged
accounts) read only flags that survived. Held-back signals go to their own file; the signals gate
reports them and passes on only the others.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from flows87.io import read_json, write_parquet
from flows87.pipeline.cases.scoring import load_settings as load_scoring
from flows87.pipeline.job import Job
from flows87.pipeline.rules import empty_signals, load_rules, run_rules
from flows87.pipeline.rules.ceiling import Ceiling, hold_back_all, summary_lines
from flows87.pipeline.rules.engine import columns_read
from flows87.pipeline.rules.evaluate import absent_inputs
from flows87.pipeline.rules.model import Rule
from flows87.pipeline.rules.relative import Resolved, resolve
from flows87.pipeline.runinfo import StageRecord, stage
from flows87.pipeline.stages import graph_groups, parts
from flows87.pipeline.stages.common import (
    feature_settings,
    free_memory,
    origin,
)
from flows87.pipeline.stages.config import RunConfig


def _chosen(config: RunConfig, *, graph: bool) -> list[Rule]:
    return [r.rule for r in load_rules(config.rules_dir) if (r.rule.scope == "graph") == graph]


def run_ceiling(features: pl.DataFrame | pl.LazyFrame, config: RunConfig) -> Ceiling:
    """The flood ceiling of this run: its active accounts (those with features)."""
    population = features.lazy().select(pl.col("account_id").n_unique()).collect().item()
    scoring = load_scoring(config.settings_path("scoring"))
    return Ceiling(int(population), scoring.ceiling, scoring.max_case_accounts)


def rules(job: Job, part: int) -> dict[str, Any]:
    """Account and transaction rules on one partition's accounts: in one piece, or (a large
    input) batch after batch of them (`parts.batches`)."""
    config, run = job.config, job.run
    free_memory()
    with stage(run, f"rules-{part:04d}") as rec:
        chosen = _chosen(config, graph=False)
        ids = parts.members(job, part)
        batches = parts.batches(job, ids)
        # only the columns the rules read: the whole transactions and features tables are
        # about 2.5 GB in memory at 5M transactions
        needed = columns_read(chosen)
        tx_cols, feat_cols = needed if needed is not None else (None, None)
        everyone = pl.scan_parquet(run.features)
        present = everyone.collect_schema().names()
        if feat_cols is not None:
            everyone = everyone.select([c for c in present if c in feat_cols])
        accounts = pl.read_parquet(run.accounts)
        settings, at = feature_settings(config), origin(job)
        whole = ids is None and len(batches) == 1
        resolved: Resolved | None = None
        relative: list[dict[str, Any]] = []
        absent = None
        if not whole:  # relative thresholds and absent inputs are the whole population's
            resolved, relative = resolve(chosen, everyone, config.rule_overrides)
            scan = pl.scan_parquet(run.transactions)
            names = scan.collect_schema().names()
            if tx_cols is not None:
                scan = scan.select([c for c in names if c in tx_cols])
            absent = absent_inputs(everyone, scan)
        found: list[pl.DataFrame] = []
        for batch in batches:
            tx = parts.transactions(job, batch, None if tx_cols is None else list(tx_cols))
            feats = (everyone if batch is None else parts.of_batch(everyone, batch)).collect()
            if resolved is None:
                resolved, relative = resolve(chosen, feats, config.rule_overrides)
            result = run_rules(
                chosen,
                feats,
                tx,
                accounts,
                settings,
                at,
                config.rule_overrides,
                resolved=resolved,
                absent=absent,
            )
            del tx, feats
            signals = result.signals
            if batch is not None:  # transaction rules flag both ends: keep this batch's
                signals = signals.filter(pl.col("account_id").is_in(batch.implode()))
            found.append(signals)
            for key, seconds in result.seconds.items():
                rec.timings[key] = round(rec.timings.get(key, 0.0) + seconds, 3)
            rec.warnings += [w for w in result.warnings if w not in rec.warnings]
            free_memory()
        signals = pl.concat(found)
        rec.counts = {"signals": signals.height, "skipped": result.skipped}
        if len(batches) > 1:
            rec.counts["batches"] = len(batches)
        rec.extra["relative"] = relative  # the same in every partition; merge_rules reports it
        job.hand_over(run.part("signals_rules", part), signals, write_parquet)
    return {"part": part, "signals": signals.height}


def merge_rules(job: Job) -> dict[str, Any]:
    """The partitions' rule signals as one file, the flood ceiling applied to the whole
    population's signals."""
    config, run = job.config, job.run
    with stage(run, "rules") as rec:
        found = [job.take(p, pl.read_parquet) for p in parts.paths(job, "signals_rules")]
        merged = pl.concat([empty_signals(), *found])
        merged = merged.sort("signal_id", "account_id", "window_start", nulls_last=True)
        chosen = _chosen(config, graph=False)
        ceiling = run_ceiling(pl.scan_parquet(run.features), config)
        kept, held, records = hold_back_all(chosen, merged, ceiling)
        write_parquet(kept, run.stage_signals("rules"))
        write_parquet(held, run.stage_held("rules"))
        warnings: list[str] = []
        skipped: set[str] = set()
        relative: list[dict[str, Any]] = []
        for p in range(len(found)):
            path = run.stage_record(f"rules-{p:04d}")
            if path.exists():
                part_record = read_json(path)
                warnings += part_record.get("warnings", [])
                skipped |= set(part_record.get("counts", {}).get("skipped", []))
                relative = part_record.get("relative", relative)
        fired = dict(kept.group_by("signal_id").len().iter_rows())
        rec.counts = {
            "signals": kept.height,
            "held_back_signals": held.height,
            "fired": {
                r.id: int(fired.get(r.id, 0))
                for r in chosen
                if r.id not in skipped and r.status != "deprecated"
            },
            "skipped": sorted(skipped),
            "partitions": len(found),
        }
        rec.warnings = sorted(set(warnings)) + summary_lines(records)
        _record_ceiling(rec, ceiling, records, relative)
    return rec.counts


def _record_ceiling(
    rec: StageRecord,
    ceiling: Ceiling,
    held_back: list[dict[str, Any]],
    relative: list[dict[str, Any]],
) -> None:
    rec.extra["ceiling"] = {"population": ceiling.population, **ceiling.settings.model_dump()}
    rec.extra["held_back"] = held_back
    rec.extra["relative"] = relative


def graph(job: Job) -> dict[str, Any]:
    """The graph patterns, on the whole money graph and the merged rules' surviving signals: in
    one context, or group after group above GRAPH_GROUP_ROWS transactions (stages/graph_groups)."""
    free_memory()
    with stage(job.run, "graph") as rec:
        given, result = graph_groups.run_graph(job)
        return graph_groups.write_graph(job, rec, given, result)
