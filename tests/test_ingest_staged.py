"""A file read through RUN/staging/ (parsed to a file, only its rejects collected: what a large
input does) gives the same rows, rejects and errors as one read in memory, in every format."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from ingest_samples import AMLSIM, AMLWORLD, CANONICAL, FIXTURES, PAYSIM, SAMLD
from polars.testing import assert_frame_equal

from flows87.errors import InputError
from flows87.pipeline.ingest import read
from flows87.pipeline.ingest.rejects import clear_staged, staged_files

SOURCES = [
    AMLWORLD,
    PAYSIM,
    SAMLD,
    AMLSIM,
    CANONICAL,
    FIXTURES / "amlworld" / "Bad-Rows_Trans.csv",
    FIXTURES / "paysim" / "bad_rows.csv",
    FIXTURES / "samld" / "bad_rows.csv",
    FIXTURES / "amlsim" / "bad",
    FIXTURES / "canonical" / "bad",
    FIXTURES / "amlgentex" / "sim",
    FIXTURES / "amlgentex" / "bad",
]


def _tables(path: Path, staging: Path | None, fraction: float) -> list[pl.DataFrame]:
    result = read(path, max_reject_fraction=fraction, staging=staging, stage_above=0)
    if staging is not None:
        assert staged_files(staging), "the staged path was not taken"
    tables = [result.transactions.collect(), result.accounts.collect(), result.rejects]
    if staging is not None:
        clear_staged(staging)
        assert not staged_files(staging)
    return tables


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_staged_read_gives_the_same_tables(path: Path, tmp_path: Path) -> None:
    held = _tables(path, None, 1.0)
    staged = _tables(path, tmp_path / "staging", 1.0)
    for a, b in zip(staged, held, strict=True):
        assert_frame_equal(a, b)


@pytest.mark.parametrize("path", SOURCES[5:10], ids=lambda p: p.parent.name)
def test_a_staged_read_refuses_too_many_rejects_alike(path: Path, tmp_path: Path) -> None:
    errors = []
    for staging in (None, tmp_path / "staging"):
        with pytest.raises(InputError) as info:
            read(path, max_reject_fraction=0.0, staging=staging, stage_above=0)
        errors.append(str(info.value))
    assert errors[0] == errors[1]
    assert " of " in errors[0]  # "N of M rows could not be read": counted past the cap


def test_a_canonical_parquet_reject_keeps_its_typed_record(tmp_path: Path) -> None:
    """A Parquet source's record keeps its native values through the staged file."""
    tx = read(CANONICAL).transactions.collect().drop("source_row")
    tx = tx.with_columns(
        pl.when(pl.col("txn_id") == tx["txn_id"][1])
        .then(pl.lit("not a channel"))
        .otherwise(pl.col("channel"))
        .alias("channel"),
        extra=pl.lit([1, 2]),
    )
    tx.write_parquet(tmp_path / "transactions.parquet")
    held = _tables(tmp_path, None, 0.5)
    staged = _tables(tmp_path, tmp_path / "staging", 0.5)
    assert staged[2].height == 1
    for a, b in zip(staged, held, strict=True):
        assert_frame_equal(a, b)
