"""Stage 3b: the PyOD ensemble, fitted once on every account, scored per partition, combined.

A model fitted on the population is what makes an account "unusual", so `fit_detectors` fits
on every account (the fitted state pickles to a few MB for the partition tasks); each partition
scores its accounts against it, and `combine` ranks all scores together, flags the top share and
explains it. The anomaly scores equal one partition's to the bit, whatever the partitioning.
"""

from __future__ import annotations

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


def _write_model(fitted: ensemble.Fitted | None, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps(fitted, protocol=pickle.HIGHEST_PROTOCOL))


def _read_model(path: Path) -> ensemble.Fitted | None:
    if not path.exists():
        raise InputError("no fitted detectors: run fit_detectors first", file=path)
    return pickle.loads(path.read_bytes())  # written by this run's fit_detectors task


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
        # in one process with one partition the population is all that is scored: no sorted
        # columns for other accounts, and PyOD's models fit on a thread while the next step
        # scores with the others
        whole = job.memo is not None and job.partitions == 1
        pool = ThreadPoolExecutor(max_workers=1) if whole else None
        features = pl.read_parquet(job.run.features)
        fitted = ensemble.fit(features, settings, for_parts=not whole, pool=pool)
        if pool is not None:
            pool.shutdown(wait=False)  # its model is a Future the scoring step waits for
        del features
        job.hand_over(job.run.detector_model, fitted, _write_model)
        rec.counts = {
            "accounts": fitted.n if fitted else 0,
            "features_used": len(fitted.used) if fitted else 0,
        }
    return rec.counts


def detectors(job: Job, part: int) -> dict[str, Any]:
    """Each model's score for one partition's accounts, against the whole population."""
    with stage(job.run, f"detectors-{part:04d}") as rec:
        fitted = _fitted(job)
        if fitted is None:
            raw = pl.DataFrame(schema={"account_id": pl.String})
        else:
            ids = parts.members(job, part)
            if ids is None and fitted.population is not None:  # fitted here, on these accounts
                raw = ensemble.raw_scores(fitted, None)
            else:
                feats = parts.of_members(pl.scan_parquet(job.run.features), ids, "account_id")
                raw = ensemble.raw_scores(fitted, feats.collect())
        job.hand_over(job.run.part("detector_scores", part), raw, write_parquet)
        rec.counts = {"scored_accounts": raw.height}
    return {"part": part, **rec.counts}


def combine(job: Job) -> dict[str, Any]:
    """Rank the partitions' scores over all accounts, flag and explain; writes the detectors'
    signals and every scored account's anomaly score."""
    run = job.run
    with stage(run, "detectors") as rec:
        fitted = _fitted(job)
        if fitted is None:
            settings = ensemble.load_settings(job.config.settings_path("detectors"))
            result = ensemble.score(pl.read_parquet(run.features), settings)
        else:
            found = [job.take(p, pl.read_parquet) for p in parts.paths(job, "detector_scores")]
            kept = fitted.population is not None  # in this process: no need to read features
            features = None if kept else pl.read_parquet(run.features)
            result = ensemble.combine(pl.concat(found), features, fitted)
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
