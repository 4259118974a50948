"""Stage 3b: the PyOD ensemble, fitted once on every account, scored per partition, combined.

A model fitted on the population is what makes an account "unusual", so `fit_detectors` fits
on every account (the fitted state pickles to about 150 bytes an account for the partition
tasks, 72 MB at 480k accounts, most of it the distinct values ECOD and COPOD rank against);
each partition scores its accounts against it, and `combine` ranks all scores together, flags
the top share and explains it. The anomaly scores equal one partition's to the bit, whatever the partitioning.

Each step reads only the detectors' window and columns of the feature table, and above
`BATCH_ACCOUNTS` accounts works through them in batches (contiguous runs of sorted account ids,
like parts.batches): the population's matrix is built batch by batch, and a partition scores its
accounts batch by batch against the fitted population, which gives each the same bits (a batch
is a partition of the partition). Below it, in one process, the fitted population stays in
memory for scoring and combining, as before.
"""

from __future__ import annotations

import math
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import InputError
from flows87.io import atomic_path, write_parquet
from flows87.pipeline import detectors as ensemble
from flows87.pipeline.job import Job
from flows87.pipeline.runinfo import stage
from flows87.pipeline.stages import parts
from flows87.pipeline.stages.common import free_memory

BATCH_ACCOUNTS = 500_000
"""Above this many accounts in the window the steps work in batches of about this many accounts
(and the population is not kept in memory between steps). At 20M transactions (1.9M accounts)
the stage in one process peaked at 12.1 GB with every account at once."""


def _write_model(fitted: ensemble.Fitted | None, path: Path) -> None:
    # streamed: the sorted columns (1 GB at 1.9M accounts) are not copied into one bytes object
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        pickle.dump(fitted, out, protocol=pickle.HIGHEST_PROTOCOL)


def _read_model(path: Path) -> ensemble.Fitted | None:
    if not path.exists():
        raise InputError("no fitted detectors: run fit_detectors first", file=path)
    with path.open("rb") as f:
        return pickle.load(f)  # written by this run's fit_detectors task


def _window(
    job: Job,
    settings: ensemble.DetectorSettings,
    ids: pl.Series | None = None,
    *,
    members: bool = True,
) -> pl.DataFrame:
    """The window's rows of the feature table with the columns the ensemble may use, for the
    sorted accounts `ids` (None: all; `members` False: every account between the first and
    the last of them, all of them being a contiguous run of the window's accounts)."""
    scan = pl.scan_parquet(job.run.features).filter(pl.col("window") == settings.window)
    if ids is not None and ids.len() == 0:
        scan = scan.head(0)
    elif ids is not None:
        inside = (pl.col("account_id") >= ids[0]) & (pl.col("account_id") <= ids[-1])
        scan = parts.of_batch(scan, ids) if members else scan.filter(inside)
    present = list(pl.read_parquet_schema(job.run.features))
    return scan.select("account_id", "window", *ensemble.columns(present, settings)).collect()


def _batches(
    job: Job, settings: ensemble.DetectorSettings, ids: pl.Series | None, size: int
) -> list[pl.Series | None]:
    """`ids` (None: every account of the window) in contiguous runs of at most about `size`
    sorted accounts; one run of them all (`[None]` for every account) when one is enough."""
    if ids is None:
        scan = pl.scan_parquet(job.run.features).filter(pl.col("window") == settings.window)
        accounts = scan.select(pl.col("account_id").unique()).collect().to_series()
    else:
        accounts = ids
    accounts = accounts.drop_nulls().sort()
    n = math.ceil(accounts.len() / max(size, 1))
    if n <= 1:
        return [None if ids is None else accounts]
    step = math.ceil(accounts.len() / n)
    return [accounts.slice(start, step) for start in range(0, accounts.len(), step)]


def _population(
    job: Job, settings: ensemble.DetectorSettings, batches: list[pl.Series | None]
) -> list[pl.DataFrame]:
    """The matrix of every account of the window in pieces, built batch by batch (each batch's
    rows of the window read and reduced alone: the window's rows of every account were twice
    the matrix)."""
    if len(batches) == 1:
        return [ensemble.matrix(_window(job, settings), settings)]
    return [ensemble.matrix(_window(job, settings, b, members=False), settings) for b in batches]


def _fitted(job: Job) -> ensemble.Fitted | None:
    """The fitted ensemble, left in place for the other partitions and `combine`."""
    key = str(job.run.detector_model)
    if job.memo is not None and key in job.memo:
        return job.memo[key]
    return _read_model(job.run.detector_model)


def fit_detectors(job: Job) -> dict[str, Any]:
    """Fit the ensemble once on every account (scaling, sorted columns, histograms, trees)."""
    free_memory()
    with stage(job.run, "fit_detectors") as rec:
        settings = ensemble.load_settings(job.config.settings_path("detectors"))
        rec.params = settings.model_dump()
        batches = _batches(job, settings, None, BATCH_ACCOUNTS)
        # in one process the population stays in memory for the next steps unless it is
        # batched; with one partition it is all that is scored: no sorted columns for other
        # accounts, and PyOD's models fit on a thread while the next step scores with the others
        keep = job.memo is not None and len(batches) == 1
        whole = keep and job.partitions == 1
        pool = ThreadPoolExecutor(max_workers=1) if whole else None
        fitted = ensemble.fit_matrix(
            _population(job, settings, batches),
            settings,
            for_parts=not whole,
            pool=pool,
            keep=keep,
        )
        if pool is not None:
            pool.shutdown(wait=False)  # its model is a Future the scoring step waits for
        job.hand_over(job.run.detector_model, fitted, _write_model)
        rec.counts = {
            "accounts": fitted.n if fitted else 0,
            "features_used": len(fitted.used) if fitted else 0,
        }
    return rec.counts


def _scores(job: Job, fitted: ensemble.Fitted, ids: pl.Series | None) -> pl.DataFrame:
    """Each model's score for the accounts `ids` (None: all), batch by batch. Batches of all
    accounts are runs of the population in order: their rows' place in it is known."""
    settings = fitted.settings
    batches = _batches(job, settings, ids, BATCH_ACCOUNTS)
    if ids is not None:
        return pl.concat([ensemble.raw_scores(fitted, _window(job, settings, b)) for b in batches])
    pieces, start = [], 0
    for b in batches:
        piece = ensemble.raw_scores(fitted, _window(job, settings, b, members=False), start)
        start += piece.height
        pieces.append(piece)
    if start != fitted.n:
        raise InputError(
            f"{start} accounts to score, {fitted.n} fitted: the features changed since the fit",
            file=job.run.features,
        )
    return pl.concat(pieces)


def detectors(job: Job, part: int) -> dict[str, Any]:
    """Each model's score for one partition's accounts, against the whole population."""
    free_memory()  # what the fit freed, when the steps share a process
    with stage(job.run, f"detectors-{part:04d}") as rec:
        fitted = _fitted(job)
        if fitted is None:
            raw = pl.DataFrame(schema={"account_id": pl.String})
        else:
            ids = parts.members(job, part)
            if ids is None and fitted.population is not None:  # fitted here, on these accounts
                raw = ensemble.raw_scores(fitted, None)
            else:
                raw = _scores(job, fitted, ids)
        job.hand_over(job.run.part("detector_scores", part), raw, write_parquet)
        rec.counts = {"scored_accounts": raw.height}
    return {"part": part, **rec.counts}


def combine(job: Job) -> dict[str, Any]:
    """Rank the partitions' scores over all accounts, flag and explain; writes the detectors'
    signals and every scored account's anomaly score."""
    free_memory()
    run = job.run
    with stage(run, "detectors") as rec:
        fitted = _fitted(job)
        if fitted is None:
            settings = ensemble.load_settings(job.config.settings_path("detectors"))
            result = ensemble.score(_window(job, settings), settings)
        else:
            found = [job.take(p, pl.read_parquet) for p in parts.paths(job, "detector_scores")]
            raw = pl.concat(found)
            del found
            if fitted.population is not None:  # in this process: no need to read features
                result = ensemble.combine(raw, None, fitted)
            else:
                batches = _batches(job, fitted.settings, None, BATCH_ACCOUNTS)
                population = pl.concat(_population(job, fitted.settings, batches), rechunk=False)
                result = ensemble.combine_matrix(raw, population, fitted)
        if job.memo is not None:
            job.memo.pop(str(run.detector_model), None)
        write_parquet(result.signals, run.stage_signals("detectors"))
        write_parquet(result.scores, run.anomaly_scores)
        rec.counts = {
            "scored_accounts": result.scores.height,
            "signals": result.signals.height,
            "features_used": len(result.features_used),
        }
    return rec.counts
