"""Stage 2: per-account features over time windows, per partition, then merged and gated.

`partition` fixes every account's partition; `features` computes one partition's accounts'
features from their whole history; `gate_features` merges the partitions, runs the features
quality suite and writes RUN/features.parquet, sorted by account, window and window start.
"""

from __future__ import annotations

import math
import time
from typing import Any

import polars as pl

from flows87.io import write_parquet
from flows87.pipeline import quality
from flows87.pipeline.features import compute
from flows87.pipeline.features.compute import TRANSACTION_COLUMNS_READ
from flows87.pipeline.features.compute import empty as compute_empty
from flows87.pipeline.features.whole import whole
from flows87.pipeline.job import Job
from flows87.pipeline.quality.chunks import height
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages import parts
from flows87.pipeline.stages.common import feature_settings, free_memory, origin
from flows87.rundir import RunDir

KEYS = ("account_id", "window", "window_start")
"""The order of RUN/features.parquet."""
GATE_ROWS = 2_000_000
"""Above this many feature rows the gate reads them from their files (sorted, merged a run of
accounts at a time), validates them in chunks and streams what passes to features.parquet: at
10M transactions (2.9M rows) the features stage peaked at 5.6 GB gating them in memory, at 20M
(5.8M rows, from the file) at 3.9 GB (1M then; 2M since: see
stages/ingest.LARGE_ROWS)."""


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
    """Features of one partition's accounts, not yet gated: in one piece, or (a large input)
    batch after batch into the partition's file."""
    free_memory()
    with stage(job.run, f"features-{part:04d}") as rec:
        settings = feature_settings(job.config)
        rec.params["windows"] = settings.windows
        ids = parts.members(job, part)
        batches = parts.batches(job, ids)
        acc = pl.read_parquet(job.run.accounts)
        at = origin(job)
        scan = pl.scan_parquet(job.run.transactions)
        present = [c for c in scan.collect_schema().names() if c in TRANSACTION_COLUMNS_READ]
        with rec.step("whole"):
            everything = whole(scan.select(present), acc.lazy())
        rec.counts = {"transactions": 0, "rows": 0, "batches": len(batches)}

        def one(batch: pl.Series | None) -> pl.DataFrame:
            tx = parts.transactions(job, batch, list(TRANSACTION_COLUMNS_READ))
            t0 = time.perf_counter()
            table = compute(tx, acc, settings, origin=at, whole=everything, only=batch)
            seconds = rec.timings.get("compute", 0.0) + time.perf_counter() - t0
            rec.timings["compute"] = round(seconds, 3)
            rec.counts["transactions"] += tx.height
            rec.counts["rows"] += table.height
            return table

        path = job.run.part("features", part)
        if len(batches) == 1:
            job.hand_over(path, one(ids), write_parquet)
        else:
            with parts.appending(path, compute_empty()) as out:
                for batch in batches:
                    out.append(one(batch))
                    free_memory()
    return {"part": part, **rec.counts}


def gate_features(job: Job) -> dict[str, Any]:
    """Merge the partitions' features, gate them, write RUN/features.parquet."""
    run = job.run
    with stage(run, "gate_features") as rec:
        found: list[pl.DataFrame | pl.LazyFrame] = [
            job.take(p, pl.scan_parquet) for p in parts.paths(job, "features")
        ]
        rows = sum(height(f) for f in found)
        if rows > GATE_ROWS:
            with rec.step("sort"):
                lazy = _sorted(run, found, rows)
            with rec.step("gate"):
                streamed = quality.run_gate(
                    lazy, "features", run, max_failed_fraction=job.config.max_failed_fraction
                )
            write_parquet(streamed.passed, run.features)
            stats = streamed.stats
            written = pl.scan_parquet(run.features).select(
                pl.len(), pl.col("account_id").n_unique()
            )
            passed, accounts = written.collect(engine="streaming").row(0)
        else:
            table = pl.concat([_collected(f) for f in found], rechunk=False)
            with rec.step("sort"):
                table = table.sort(*KEYS)
            with rec.step("gate"):
                gate = quality.run_gate(
                    table, "features", run, max_failed_fraction=job.config.max_failed_fraction
                )
            del table
            write_parquet(gate.passed, run.features)
            passed, accounts = gate.passed.height, gate.passed["account_id"].n_unique()
            stats = gate.stats
        rec.counts = {
            "rows": passed,
            "accounts": accounts,
            "quarantined": stats["rows_quarantined"],
        }
        rec.warnings = list(stats["warnings"])
    return rec.counts


def _collected(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame if isinstance(frame, pl.DataFrame) else frame.collect()


def _sorted(run: RunDir, found: list[pl.DataFrame | pl.LazyFrame], rows: int) -> pl.LazyFrame:
    """The partitions' features as one table sorted by `KEYS`, read lazily. Each partition's are
    sorted already (batches append in account order); several are merged into
    RUN/staging/features.parquet a run of accounts at a time, so no step holds them all."""
    if len(found) == 1:
        return found[0].lazy()
    ids = pl.read_parquet(run.partitions, columns=["account_id"])["account_id"].drop_nulls()
    size = max(1, math.ceil(ids.len() / math.ceil(rows / GATE_ROWS)))
    account = pl.col("account_id")
    cuts = [account.is_null()] + [
        (account >= ids[start]) & (account <= ids[min(start + size, ids.len()) - 1])
        for start in range(0, ids.len(), size)
    ]
    path = run.staging / "features.parquet"
    with parts.appending(path, compute_empty()) as out:
        for cut in cuts:
            piece = pl.concat([f.lazy().filter(cut) for f in found]).collect(engine="streaming")
            if piece.height:
                out.append(piece.sort(*KEYS))
    return pl.scan_parquet(path)
