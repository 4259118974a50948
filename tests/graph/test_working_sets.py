"""Patterns whose working set was cut (issue 17: the graph stage at 20M transactions) find what
the plain version found: here multi_card_atm's candidate pairs, told apart by integer codes
before the few that pass are named, against pairing every withdrawal by its texts."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from flows87.pipeline.graph.mules import _recurring_pairs, _with_occasions

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _plain_pairs(
    cash: pl.DataFrame, window: timedelta, gap: timedelta, m: int, partners: int
) -> pl.DataFrame:
    """Every withdrawal and its next `partners` at the location, compared by their texts."""
    ordered = cash.sort("location_id", "ts", "txn_id")
    rows = ordered.to_dicts()
    found = []
    for i, r in enumerate(rows):
        for o in rows[i + 1 : i + 1 + partners]:
            if (
                o["location_id"] == r["location_id"]
                and o["party"] != r["party"]
                and o["ts"] - r["ts"] <= window
            ):
                pair = sorted([r["account_id"], o["account_id"]])
                found.append((r["location_id"], pair[0], pair[1], r["ts"]))
    pairs = pl.DataFrame(
        found,
        schema={"location_id": pl.String, "a": pl.String, "b": pl.String, "ts": cash["ts"].dtype},
        orient="row",
    ).unique()
    return (
        _with_occasions(pairs, "ts", ["location_id", "a", "b"], gap)
        .group_by("location_id", "a", "b")
        .agg(pl.col("occasion").max().alias("n"))
        .filter(pl.col("n") >= m)
        .select("location_id", "a", "b")
    )


def test_recurring_pairs_equal_the_plain_pairing() -> None:
    rng = random.Random(11)
    for _ in range(30):
        n = rng.randint(5, 120)
        cash = pl.DataFrame(
            {
                "txn_id": [f"t{i:04d}" for i in range(n)],
                "ts": [
                    T0 + timedelta(minutes=rng.choice([0, 3, 7, 60, 200]) * i) for i in range(n)
                ],
                "account_id": [f"acc{rng.randint(0, 9)}" for _ in range(n)],
                "location_id": [f"ATM-{rng.randint(0, 2)}" for _ in range(n)],
            }
        ).with_columns(  # two accounts a party: pairs of one party do not count
            (
                pl.lit("P")
                + (pl.col("account_id").str.slice(3).cast(pl.Int32) // 2).cast(pl.String)
            ).alias("party")
        )
        args = (timedelta(minutes=10), timedelta(hours=1), rng.randint(1, 3), rng.randint(1, 6))
        got = _recurring_pairs(cash, *args).sort("location_id", "a", "b")
        assert_frame_equal(got, _plain_pairs(cash, *args).sort("location_id", "a", "b"))
