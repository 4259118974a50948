"""A large table's gate, validated in chunks, finds what one run on the whole table finds."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_quality import END, PARAMS, accounts, transactions

from flows87.errors import QualityGateError
from flows87.pipeline.quality import run_gate


def _bad_transactions() -> pl.DataFrame:
    """Failures of every kind, duplicates far apart (so chunks of 3 rows split them)."""
    return transactions(
        n=40,
        amount={1: -5.0, 6: -1.0, 33: 0.0},
        src_account={2: None, 25: "stranger"},
        dst_account={12: "acc0", 30: "nobody"},  # row 12 pays itself: a warning
        txn_id={4: "t3", 38: "t3", 39: "t21"},
        currency={5: "usd", 6: "usd"},
        ts={7: END + timedelta(hours=1), 20: None},
        mcc={9: "54"},
    ).with_columns(  # rows 10 and 36 repeat one payment under other ids (a warning)
        pl.when(pl.int_range(pl.len()) == 36)
        .then(pl.lit(None))
        .otherwise(pl.col("txn_id"))
        .alias("txn_id")
    )


def _gated(tmp: Path, frame: pl.DataFrame | pl.LazyFrame, suite: str, rows: int) -> Any:
    params = PARAMS if suite == "raw_transactions" else {**PARAMS, "known_accounts": None}
    result = run_gate(frame, suite, tmp, params=params, max_failed_fraction=1, chunk_rows=rows)
    gx = json.loads(result.result_path.read_text())
    passed = result.passed if isinstance(result.passed, pl.DataFrame) else result.passed.collect()
    return passed, result.quarantined, result.stats, gx["results"], gx["statistics"]


@pytest.mark.parametrize("suite", ["raw_transactions", "raw_accounts"])
@pytest.mark.parametrize("rows", [3, 7])
def test_chunks_give_the_whole_tables_result(tmp_path: Path, suite: str, rows: int) -> None:
    frame = _bad_transactions() if suite == "raw_transactions" else _bad_accounts()
    whole = _gated(tmp_path / "whole", frame, suite, rows=10**9)
    assert whole[1].height >= 3  # the frame does fail
    for name, table in (("eager", frame), ("lazy", frame.lazy())):
        chunked = _gated(tmp_path / name, table, suite, rows=rows)
        assert_frame_equal(chunked[0], whole[0])
        assert_frame_equal(chunked[1], whole[1])
        assert chunked[2] == whole[2]
        assert chunked[3] == whole[3]  # every result: counts, percentages, lists of values
        assert chunked[4] == whole[4]
        # a lazy table's hash chunks went through files of their own, none left behind
        spill = tmp_path / name / "staging" / "gate"
        assert (name == "lazy") == spill.is_dir()
        assert not any(spill.iterdir()) if spill.is_dir() else True


def _bad_accounts() -> pl.DataFrame:
    table = accounts(account_id={3: "acc0", 5: None}, kind={1: "alien"}, country={2: "xx"})
    return pl.concat([table, accounts(account_id={0: "acc1"})])


def test_a_failing_table_check_still_stops_a_chunked_gate(tmp_path: Path) -> None:
    frame = transactions(n=12).with_columns(pl.col("amount").cast(pl.String))
    with pytest.raises(QualityGateError, match="expect_column_values_to_be_of_type"):
        run_gate(frame, "raw_transactions", tmp_path, params=PARAMS, chunk_rows=4)


def _many_failures(n: int = 900) -> pl.DataFrame:
    """More failing rows of one check than GX lists values of (200): every other row repeats a
    txn_id half the table away, one row in three has a bad amount."""
    return transactions(n=n).with_columns(
        txn_id=pl.format("t{}", pl.int_range(pl.len()) % (n // 2 + n // 4)),
        amount=pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(pl.lit(-1.0))
        .otherwise(pl.col("amount")),
    )


def test_chunks_with_more_failures_than_gx_lists_give_the_whole_result(tmp_path: Path) -> None:
    frame = _many_failures()
    whole = _gated(tmp_path / "whole", frame, "raw_transactions", rows=10**9)
    assert whole[1].height > 400  # each check fails more rows than GX lists values of
    for name, table in (("eager", frame), ("lazy", frame.lazy())):
        chunked = _gated(tmp_path / name, table, "raw_transactions", rows=250)
        assert_frame_equal(chunked[1], whole[1])
        assert chunked[2] == whole[2]
        assert chunked[3] == whole[3]
