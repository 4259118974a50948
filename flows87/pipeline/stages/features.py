"""Stage 2: per-account features over time windows, per partition, then merged and gated.

`partition` fixes every account's partition; `features` computes one partition's accounts'
features from their whole history; `gate_features` merges the partitions, runs the features
quality suite and writes RUN/features.parquet, sorted by account, window and window start.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline import quality
from flows87.pipeline.features import compute
from flows87.pipeline.features.compute import TRANSACTION_COLUMNS_READ
from flows87.pipeline.job import Job
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages import parts
from flows87.pipeline.stages.common import feature_settings, free_memory, origin


def partition(job: Job) -> list[int]:
    """Fix the partition of every account seen; return the partition numbers to map over."""
    parts.check_count(job.partitions)
    run = job.run
    with stage(run, "partition", {"partitions": job.partitions}) as rec:
        tx = pl.scan_parquet(run.transactions)
        ids = pl.concat(
            [
                pl.scan_parquet(run.accounts).select("account_id"),
                tx.select(pl.col("src_account").alias("account_id")),
                tx.select(pl.col("dst_account").alias("account_id")),
            ]
        ).collect()["account_id"]
        table = parts.assign(ids, job.partitions)
        write_parquet(table, run.partitions)
        # parts (and their records) of an earlier run, maybe with another partition count
        stale = [*run.parts.glob("*.parquet"), *run.stages.glob("*-[0-9][0-9][0-9][0-9].json")]
        for old in stale:
            old.unlink()
        sizes = table.group_by("part").len().sort("part")
        rec.counts = {"accounts": table.height, "sizes": dict(sizes.iter_rows())}
    return list(range(job.partitions))


def features(job: Job, part: int) -> dict[str, Any]:
    """Features of one partition's accounts, not yet gated."""
    free_memory()
    with stage(job.run, f"features-{part:04d}") as rec:
        settings = feature_settings(job.config)
        rec.params["windows"] = settings.windows
        ids = parts.members(job, part)
        tx = parts.transactions(job, ids, list(TRANSACTION_COLUMNS_READ))
        acc = pl.read_parquet(job.run.accounts)
        with rec.step("compute"):
            table = compute(tx, acc, settings, origin=origin(job))
        if ids is not None:
            table = table.filter(pl.col("account_id").is_in(ids.implode()))
        rec.counts = {"transactions": tx.height, "rows": table.height}
        del tx, acc
        job.hand_over(job.run.part("features", part), table, write_parquet)
    return {"part": part, **rec.counts}


def gate_features(job: Job) -> dict[str, Any]:
    """Merge the partitions' features, gate them, write RUN/features.parquet."""
    run = job.run
    with stage(run, "gate_features") as rec:
        table = pl.concat(
            [job.take(p, pl.read_parquet) for p in parts.paths(job, "features")], rechunk=False
        )
        with rec.step("sort"):
            table = table.sort("account_id", "window", "window_start")
        with rec.step("gate"):
            gate = quality.run_gate(
                table, "features", run, max_failed_fraction=job.config.max_failed_fraction
            )
        del table
        write_parquet(gate.passed, run.features)
        rec.counts = {
            "rows": gate.passed.height,
            "accounts": gate.passed["account_id"].n_unique(),
            "quarantined": gate.stats["rows_quarantined"],
        }
        rec.warnings = list(gate.stats["warnings"])
    return rec.counts
