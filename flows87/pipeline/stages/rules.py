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
from flows87.pipeline.rules.model import Rule
from flows87.pipeline.rules.relative import resolve
from flows87.pipeline.runinfo import StageRecord, stage
from flows87.pipeline.stages import parts
from flows87.pipeline.stages.common import (
    GRAPH_FEATURE_COLUMNS,
    NOT_FOR_DETECTION,
    feature_settings,
    free_memory,
    origin,
    read_columns,
    read_except,
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
    """Account and transaction rules on one partition's accounts."""
    config, run = job.config, job.run
    free_memory()
    with stage(run, f"rules-{part:04d}") as rec:
        chosen = _chosen(config, graph=False)
        ids = parts.members(job, part)
        # only the columns the rules read: the whole transactions and features tables are
        # about 2.5 GB in memory at 5M transactions
        needed = columns_read(chosen)
        tx_cols, feat_cols = needed if needed is not None else (None, None)
        tx = parts.transactions(job, ids, None if tx_cols is None else list(tx_cols))
        everyone = pl.scan_parquet(run.features)
        present = everyone.collect_schema().names()
        if feat_cols is not None:
            everyone = everyone.select([c for c in present if c in feat_cols])
        feats = parts.of_members(everyone, ids, "account_id").collect()
        # relative thresholds are the whole population's: with one partition, the frame read
        resolved, relative = resolve(
            chosen, feats if ids is None else everyone, config.rule_overrides
        )
        result = run_rules(
            chosen,
            feats,
            tx,
            pl.read_parquet(run.accounts),
            feature_settings(config),
            origin(job),
            config.rule_overrides,
            resolved=resolved,
        )
        signals = result.signals
        if ids is not None:  # transaction rules flag both ends: keep this partition's
            signals = signals.filter(pl.col("account_id").is_in(ids.implode()))
        rec.counts = {"signals": signals.height, "skipped": result.skipped}
        rec.timings = result.seconds
        rec.warnings = result.warnings
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
    """The graph patterns, on the whole money graph and the merged rules' surviving signals."""
    config, run = job.config, job.run
    free_memory()
    with stage(run, "graph") as rec:
        chosen = _chosen(config, graph=True)
        rec.params = {"rules": [r.id for r in chosen], "overrides": config.rule_overrides}
        tx = read_except(run.transactions, NOT_FOR_DETECTION)
        feats = read_columns(run.features, set(GRAPH_FEATURE_COLUMNS))
        prior = empty_signals()
        if run.stage_signals("rules").exists():
            prior = pl.read_parquet(run.stage_signals("rules"))  # held-back ones are not in it
        ceiling = run_ceiling(feats, config)
        result = run_rules(
            chosen,
            feats,
            tx,
            pl.read_parquet(run.accounts),
            feature_settings(config),
            origin(job),
            config.rule_overrides,
            prior=prior,
            ceiling=ceiling,
        )
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
        _record_ceiling(rec, ceiling, result.held_back, result.relative)
    return {"signals": result.signals.height, "skipped": result.skipped}
