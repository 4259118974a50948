"""Account-hash partitions: which accounts each per-partition step works on, and their rows.

Every account belongs to one partition (a hash of its id, fixed once per run in
RUN/partitions.parquet so all workers agree). A partition's step reads the transactions that
touch its accounts (both directions, so each of its accounts sees its whole history) and keeps
only its own accounts' rows: the union over partitions equals one partition's output, which is
the contract tests check. With one partition (`flows87 run`, the DAG's default) nothing is
filtered.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows87.errors import ConfigError, InputError
from flows87.pipeline.job import Job

HASH_SEED = 87
MAX_PARTITIONS = 1024


def check_count(partitions: int) -> None:
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ConfigError(
            f"partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}",
            field="partitions",
        )


def assign(account_ids: pl.Series, partitions: int) -> pl.DataFrame:
    """account_id -> part. polars' hash is stable within one polars version (the lock pins it);
    the table is written once per run, so workers never recompute it."""
    return (
        account_ids.unique()
        .sort()
        .to_frame("account_id")
        .with_columns(
            (pl.col("account_id").hash(HASH_SEED) % partitions).cast(pl.Int32).alias("part")
        )
    )


def count(job: Job) -> int:
    return _count(pl.read_parquet(job.run.partitions, columns=["part"]))


def _count(table: pl.DataFrame) -> int:
    return int(table.select(pl.col("part").max()).item() or 0) + 1


def members(job: Job, part: int) -> pl.Series | None:
    """The partition's accounts; None when there is one partition (every account)."""
    table = pl.read_parquet(job.run.partitions)
    n = _count(table)
    if not 0 <= part < n:
        raise InputError(f"no partition {part}: this run has {n}", file=job.run.partitions)
    return None if n == 1 else table.filter(pl.col("part") == part)["account_id"]


def of_members(frame: pl.LazyFrame, ids: pl.Series | None, *columns: str) -> pl.LazyFrame:
    """Rows of `frame` whose `columns` name one of `ids` (all rows when ids is None)."""
    if ids is None:
        return frame
    wanted = ids.implode()
    keep = pl.any_horizontal(pl.col(c).is_in(wanted) for c in columns)
    return frame.filter(keep)


def transactions(job: Job, ids: pl.Series | None, columns: list[str] | None = None) -> pl.DataFrame:
    """The transactions touching the partition's accounts, in either direction."""
    scan = of_members(pl.scan_parquet(job.run.transactions), ids, "src_account", "dst_account")
    if columns is not None:
        present = list(pl.read_parquet_schema(job.run.transactions))
        scan = scan.select([c for c in present if c in set(columns)])
    return scan.collect()


def paths(job: Job, what: str) -> list[Path]:
    """Every partition's output of a per-partition step, all present (else the step is not
    done everywhere yet)."""
    n = count(job)
    found = [job.run.part(what, p) for p in range(n)]
    missing = [p.name for p in found if not p.exists()]
    if missing and job.memo is None:
        raise InputError(
            f"{len(missing)} of {n} partitions have no {what} yet ({', '.join(missing[:3])}...)",
            file=job.run.parts,
            hint="run the partition tasks first",
        )
    return found
