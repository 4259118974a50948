"""What the stage functions share: reading a run's tables by column, the window origin, memory."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from flows87.pipeline import detectors
from flows87.pipeline.features import FeatureSettings, load_settings
from flows87.pipeline.job import Job
from flows87.pipeline.rules import load_rules
from flows87.pipeline.stages.config import RunConfig

NOT_FOR_DETECTION = (
    "source_row",
    "source_file",
    "memo",
    "is_suspicious",
    "typology",
    "scheme_id",
)
"""Optional transaction columns no detection stage reads: provenance, free text and the labels
(rules must not read them). Left out when the graph stage loads transactions (each string
column costs 16 bytes a row); the graph context adds absent optional columns back as nulls."""

GRAPH_FEATURE_COLUMNS = ("account_id", "window", "window_start", "window_end")
"""The feature columns the graph stage loads for its patterns' context. No pattern reads
features today (they read transactions, accounts and the rules' signals), and all of them are
0.8 GB at 500k accounts; a pattern that starts reading one fails on the missing column, and
its name belongs here."""


def free_memory() -> None:
    """Give memory that earlier steps freed back to the system before a step starts.

    `flows87 run` runs every step in one process: freed memory kept by the C allocator (numpy,
    scikit-learn) or by pyarrow's pool (pandas text) cannot serve polars, so it would add to the
    next step's peak."""
    gc.collect()
    with contextlib.suppress(Exception):  # optional: only memory is at stake
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    libc = ctypes.util.find_library("c")
    if libc:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc).malloc_trim(0)  # glibc only


@contextlib.contextmanager
def heap_set_aside() -> Iterator[None]:
    """Set the objects that exist now (modules, the caller's) aside from the garbage collector
    while the steps inside run, so that `free_memory`'s full collections scan only what the steps
    made: each scanned every object of the process, a quarter of a second in `flows87 run` and
    more in a long-lived process (an Airflow worker, a test session), half of the time of a
    run on 50k transactions. Garbage among them waits for the end to be collected. Nested
    uses leave the outermost in charge."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def no_hugepage_stalls() -> None:
    """Stop numpy from asking for transparent huge pages, unless NUMPY_MADVISE_HUGEPAGE is set.

    numpy marks every array of 4 MB or more for huge pages; where the kernel then compacts
    memory synchronously to find them (`defrag` = madvise, the default of many distributions),
    a fresh array stalls while it does: ECOD on 476k accounts x 66 features took 0.4 s without
    and 0.4-5 s with, from one run to the next, on this project's benchmark machine."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    with contextlib.suppress(ImportError, AttributeError):  # a numpy without the switch
        from numpy._core.multiarray import _set_madvise_hugepage  # type: ignore[attr-defined]

        _set_madvise_hugepage(False)


def read_columns(path: Path, columns: set[str] | None = None) -> pl.DataFrame:
    """A Parquet file of the run; with `columns`, only those of them the file has."""
    if columns is None:
        return pl.read_parquet(path)
    present = list(pl.read_parquet_schema(path))
    return pl.read_parquet(path, columns=[c for c in present if c in columns])


def read_except(path: Path, dropped: tuple[str, ...]) -> pl.DataFrame:
    present = list(pl.read_parquet_schema(path))
    return pl.read_parquet(path, columns=[c for c in present if c not in dropped])


def origin(job: Job) -> datetime:
    """Windows align to the data interval's start, or to midnight of the run's first
    transaction (the whole run's, whichever partition asks); without transactions, to the
    epoch (there is nothing to align)."""
    if job.config.interval_start is not None:
        return job.config.interval_start
    first = pl.scan_parquet(job.run.transactions).select(pl.col("ts").min()).collect().item()
    if first is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return first.replace(hour=0, minute=0, second=0, microsecond=0)


def feature_settings(config: RunConfig) -> FeatureSettings:
    """The feature settings with every window a rule or detector reads added."""
    settings = load_settings(config.settings_path("features"))
    windows = list(config.windows or settings.windows)
    for item in load_rules(config.rules_dir):
        window = item.rule.window
        if item.rule.scope == "account" and window is not None and window not in windows:
            windows.append(window)
    det = detectors.load_settings(config.settings_path("detectors"))
    if det.window not in windows:
        windows.append(det.window)
    return settings.model_copy(update={"windows": windows})
