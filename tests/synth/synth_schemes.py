"""What the generator tests share: the generated set's start and length, night hours, paid wages,
ATM occasions, and a typology's transactions scheme by scheme."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

START = date(2026, 3, 1)


DAYS = 21


NIGHT = (pl.col("ts").dt.hour() >= 22) | (pl.col("ts").dt.hour() < 4)


def scheme_txns(tx: pl.DataFrame, typology: str) -> pl.DataFrame:
    return tx.filter(pl.col("typology") == typology)


def each_scheme(tx: pl.DataFrame, typology: str) -> list[pl.DataFrame]:
    part = scheme_txns(tx, typology).sort("ts")
    return part.partition_by("scheme_id", maintain_order=True)


BEGIN = datetime(START.year, START.month, START.day, tzinfo=UTC)


def atm_occasions(withdrawals: pl.DataFrame, k: int = 3, minutes: int = 10) -> pl.DataFrame:
    """location_id, day of each occasion when >= k accounts withdrew there within minutes."""
    return (
        withdrawals.sort("location_id", "ts")
        .rolling(index_column="ts", period=f"{minutes}m", group_by="location_id")
        .agg(pl.col("src_account").n_unique().alias("n"))
        .filter(pl.col("n") >= k)
        .select("location_id", pl.col("ts").dt.date().alias("day"))
        .unique()
    )


PAID = pl.col("channel").is_in(["ach", "wire"])
