"""Per-account features the same in every window, and which optional inputs the data has.

A feature whose source columns the data lacks is null rather than zero, so the rules reading it
can be skipped with a warning instead of firing (or not) on a default.
"""

from __future__ import annotations

import polars as pl

from flows87.pipeline.features.registry import FEATURES, TIME_OF_DAY

IDENTIFIERS = ("address", "phone", "email", "device_id")
"""Party attributes unrelated parties should not share (`shared_id_parties`)."""


def has_time_of_day(tx: pl.LazyFrame | pl.DataFrame) -> bool:
    """True unless every timestamp is at midnight (data of day resolution)."""
    ts = pl.col("ts")
    midnight = (ts.dt.hour() == 0) & (ts.dt.minute() == 0) & (ts.dt.second() == 0)
    return bool(tx.lazy().select((~midnight).any()).collect(engine="streaming").item())


def available_columns(tx: pl.LazyFrame, acc: pl.LazyFrame) -> set[str]:
    """Optional columns that actually carry data (a column of nulls counts as absent)."""
    counts = pl.all().is_not_null().sum()
    tx_counts = tx.select(counts).collect(engine="streaming").row(0, named=True)
    acc_counts = acc.select(counts).collect(engine="streaming").row(0, named=True)
    avail = {c for c, n in tx_counts.items() if n}
    avail |= {c for c, n in acc_counts.items() if n}
    if has_time_of_day(tx):
        avail.add(TIME_OF_DAY)
    kinds = acc.select(pl.col("kind").is_in(["individual", "business"]).any()).collect().item()
    if not kinds:
        avail.discard("kind")
    return avail


def static_features(acc: pl.LazyFrame, tx: pl.LazyFrame, available: set[str]) -> pl.DataFrame:
    """Account attributes and shared identifiers, the same for every window."""
    pairs = [
        acc.select("party_id", pl.col(c).alias("value"))
        .drop_nulls()
        .with_columns(pl.lit(c).alias("id"))
        for c in IDENTIFIERS
        if c in available and c in acc.collect_schema().names()
    ]
    if "device_id" in available:
        parties = acc.select(pl.col("account_id").alias("src_account"), "party_id")
        pairs.append(
            tx.select("src_account", pl.col("device_id").alias("value"))
            .drop_nulls()
            .join(parties, on="src_account", how="inner")
            .select("party_id", "value", pl.lit("device_id").alias("id"))
        )
    static = acc.select("account_id", "party_id", "kind", "business_type", "opened_at")
    if pairs:
        # one row per (party, identifier, value): the rows sharing a value are its parties
        per_party = (
            pl.concat(pairs)
            .unique()
            .with_columns(pl.len().over("id", "value").alias("n"))
            .group_by("party_id")
            .agg((pl.col("n").max() - 1).cast(pl.Int64).alias("shared_id_parties"))
            .collect(engine="streaming")  # one row per party: streams a large run's devices
            .lazy()
        )
        static = static.join(per_party, on="party_id", how="left").with_columns(
            pl.col("shared_id_parties").fill_null(0)
        )
    else:
        static = static.with_columns(pl.lit(None, dtype=pl.Int64).alias("shared_id_parties"))
    return static.drop("party_id").collect()


def null_missing(frame: pl.DataFrame, available: set[str]) -> pl.DataFrame:
    """Null every feature whose source columns the data lacks, so rules can tell absent from zero."""
    exprs = []
    for f in FEATURES:
        missing = [n for n in f.needs if not any(alt in available for alt in n.split("|"))]
        if missing and f.name in frame.columns:
            exprs.append(pl.lit(None, dtype=frame.schema[f.name]).alias(f.name))
    return frame.with_columns(exprs) if exprs else frame


def missing_inputs(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """Features that are null in every row (their source columns were absent)."""
    query = frame.lazy().select(pl.all().is_not_null().sum(), pl.len().alias("\x00rows"))
    counts = query.collect(engine="streaming").row(0, named=True)
    if not counts.pop("\x00rows"):
        return []
    return [f.name for f in FEATURES if f.needs and counts.get(f.name, 0) == 0]
