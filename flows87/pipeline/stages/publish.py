"""Stage 7 (scheduled runs): make one interval's results visible to the people and tools downstream.

The run directory is a workspace that tasks overwrite while they run; nothing reads it as the
truth. Publishing copies a finished, gated run into FLOWS87_HOME/published/:

    published/intervals/<interval key>/   cases, signals, scored accounts, report, run.json
    published/cases_history.parquet       every case of every interval (interval_* columns)
    published/cases.parquet               the case queue: each case_id once, as last seen,
                                          with first_seen / last_seen / intervals_seen

Publishing an interval again replaces that interval's rows, so re-runs and backfills never
duplicate a case; the queue is derived from the history, so the order in which intervals are
(re)published does not matter. A lock file serialises concurrent publishers (catch-up runs).

`to_store` then loads the run into the investigators' case store (flows87.investigate.store: SQLite in
FLOWS87_HOME by default, PostgreSQL by FLOWS87_DB_URL), which keeps every case once with its
history and decisions.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from flows87.errors import ConfigError, InputError
from flows87.io import atomic_dir, write_parquet
from flows87.pipeline import schedule
from flows87.pipeline.job import Job
from flows87.rundir import PathLike

FILES = (
    "cases.parquet",
    "signals.parquet",
    "signals_held.parquet",
    "accounts_scored.parquet",
    "report.html",
    "report.md",
    "metrics.json",
    "run.json",
)
REQUIRED = ("cases.parquet", "signals.parquet", "accounts_scored.parquet", "run.json")
# The queue's order, as the case app's default sort: many cases share a risk score (1.0 at the
# top), and the run's rank orders those (it also weighs evidence and size); case_id only breaks
# what is left, such as equal ranks of different intervals.
QUEUE_ORDER = ["risk_score", "rank", "case_id"]


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_cases(history: pl.DataFrame) -> pl.DataFrame:
    """Each case once, as in the latest interval it was seen in."""
    if history.is_empty():
        return history
    seen = history.group_by("case_id").agg(
        pl.col("interval_start").min().alias("first_seen"),
        pl.col("interval_end").max().alias("last_seen"),
        pl.col("interval_key").n_unique().alias("intervals_seen"),
    )
    latest = history.sort("interval_end", "case_id").unique("case_id", keep="last")
    return latest.join(seen, on="case_id").sort(
        QUEUE_ORDER, descending=[True, False, False], nulls_last=True
    )


def publish(job: Job) -> dict[str, Any]:
    """Publish a scheduled run's interval and load its cases into the case store."""
    if job.interval is None:
        raise ConfigError("only a scheduled run (one data interval) is published", field="interval")
    interval = job.interval
    out = publish_interval(
        job.run, interval.key, interval.start, interval.end, schedule.published_dir()
    )
    out["store"] = to_store(job.run, interval.key)
    return out


def publish_interval(
    run_dir: PathLike,
    key: str,
    interval_start: datetime,
    interval_end: datetime,
    published: str | Path,
) -> dict[str, Any]:
    run_dir, published = Path(run_dir), Path(published)
    missing = [f for f in REQUIRED if not (run_dir / f).exists()]
    if missing:
        raise InputError(
            f"run is not complete, cannot publish: missing {', '.join(missing)}", file=run_dir
        )
    cases = pl.read_parquet(run_dir / "cases.parquet").with_columns(
        pl.lit(key).alias("interval_key"),
        pl.lit(interval_start).cast(pl.Datetime("us", "UTC")).alias("interval_start"),
        pl.lit(interval_end).cast(pl.Datetime("us", "UTC")).alias("interval_end"),
    )
    with _locked(published):
        with atomic_dir(published / "intervals" / key) as tmp:
            for name in FILES:
                if (run_dir / name).exists():
                    shutil.copy2(run_dir / name, tmp / name)
            # the accounts' learning rows: what later decisions about them train on (learn.py)
            if (run_dir / "learning" / "matrix.parquet").exists():
                shutil.copy2(
                    run_dir / "learning" / "matrix.parquet", tmp / "learning_matrix.parquet"
                )
        history_path = published / "cases_history.parquet"
        history = pl.read_parquet(history_path) if history_path.exists() else cases.clear()
        history = pl.concat(
            [history.filter(pl.col("interval_key") != key), cases], how="diagonal_relaxed"
        ).sort("interval_end", "rank")
        queue = current_cases(history)
        write_parquet(history, history_path)
        write_parquet(queue, published / "cases.parquet")
    return {
        "interval": key,
        "cases": cases.height,
        "queue": queue.height,
        "published": str(published / "cases.parquet"),
        "snapshot": str(published / "intervals" / key),
    }


def to_store(run_dir: PathLike, key: str, url: str | None = None) -> dict[str, Any]:
    """Upsert the run's cases into the case store (migrating it to the current schema first)."""
    from flows87.investigate.store import Store, load_run

    store = Store.open(url)
    try:
        store.upgrade()
        with store.session(write=True) as session:
            loaded = load_run(session, Path(run_dir), key)
        return {
            "store": store.url,
            "new": loaded.new,
            "updated": loaded.updated,
            "unchanged": loaded.unchanged,
            "seconds": round(loaded.seconds, 2),
        }
    finally:
        store.dispose()
