"""Account-hash partitions: which accounts each per-partition step works on, and their rows.

Every account belongs to one partition (a hash of its id, fixed once per run in
RUN/partitions.parquet so all workers agree). A partition's step reads the transactions that
touch its accounts (both directions, so each of its accounts sees its whole history) and keeps
only its own accounts' rows: the union over partitions equals one partition's output, which is
the contract tests check. With one partition (`flows87 run`, the DAG's default) nothing is
filtered.

A partition's step may also work through its accounts in batches within its process
(`batches`): contiguous runs of its sorted account ids, as many as the run's size asks for
(`BATCH_TRANSACTIONS`), each reading only the transactions touching its accounts, so the step's
memory is bounded by the batch and not by the input. Outputs sorted by account are then appended
batch after batch (`Appender`) and stay sorted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from flows87.errors import ConfigError, InputError
from flows87.io import atomic_path
from flows87.pipeline.job import Job

HASH_SEED = 87
MAX_PARTITIONS = 1024
BATCH_TRANSACTIONS = 6_000_000
"""A per-partition step works on its accounts in batches, one per this many of the run's
transactions in its share (the run's transactions x its share of the accounts); a batch then reads
the transactions touching its accounts, up to about twice as many. At 20M transactions in one
partition, features computed for every account at once peaked at 13 GB, in batches of 2M
3.95 GB (6M since: see stages/ingest.LARGE_ROWS)."""

if TYPE_CHECKING:
    import pyarrow.parquet as pq


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
    return scan.collect(engine="streaming")


def batches(job: Job, ids: pl.Series | None, rows: int | None = None) -> list[pl.Series | None]:
    """The partition's accounts (`ids`, None for every account) in batches of about `rows`
    transactions (default `BATCH_TRANSACTIONS`): `[ids]` when one is enough, else contiguous
    runs of the sorted account ids, so outputs sorted by account append in order."""
    rows = BATCH_TRANSACTIONS if rows is None else rows
    total = pl.scan_parquet(job.run.transactions).select(pl.len()).collect().item()
    everyone = pl.read_parquet(job.run.partitions, columns=["account_id"])["account_id"]
    members = (everyone if ids is None else ids).drop_nulls().sort()
    n = math.ceil(total * members.len() / max(everyone.len(), 1) / max(rows, 1))
    if n <= 1 or members.len() <= 1:
        return [ids]
    size = math.ceil(members.len() / n)
    return [members.slice(start, size) for start in range(0, members.len(), size)]


def of_batch(frame: pl.LazyFrame, ids: pl.Series, column: str = "account_id") -> pl.LazyFrame:
    """Rows of a file sorted by `column` whose value is one of the sorted `ids`: the range test
    lets the reader skip the row groups outside the batch."""
    inside = (pl.col(column) >= ids[0]) & (pl.col(column) <= ids[-1])
    return of_members(frame.filter(inside), ids, column)


class Appender:
    """Frames appended to one Parquet file, cast to the first one's schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.schema: pl.Schema | None = None
        self.rows = 0

    def append(self, frame: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        if self.schema is None:
            self.schema = frame.schema
            table = frame.to_arrow()
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        else:
            table = frame.cast(self.schema).to_arrow()
        assert self.writer is not None
        self.writer.write_table(table)
        self.rows += frame.height


@contextmanager
def appending(path: Path, empty: pl.DataFrame) -> Iterator[Appender]:
    """An `Appender` to `path`, written atomically; `empty` (the table's columns) when nothing
    was appended."""
    with atomic_path(path) as tmp:
        out = Appender(tmp)
        try:
            yield out
        finally:
            if out.writer is not None:
                out.writer.close()
        if out.writer is None:
            empty.write_parquet(tmp, compression="zstd")


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
