"""The graph context's own tables: only the columns patterns read, transfers first in time order
(so the transfers are a slice of the transactions, not a copy), whatever the input's order."""

from __future__ import annotations

from pathlib import Path

import graph_cases
import polars as pl
from graph_rows import context, t
from polars.testing import assert_frame_equal

from flows87.pipeline.graph.context import (
    CASH_CHANNELS,
    TX_COLUMNS,
    graph_columns,
    in_graph_order,
    read_in_graph_order,
    transfers,
)
from flows87.pipeline.graph.flows import by_time
from flows87.schema import conform


def _rows() -> list[dict[str, object]]:
    return [
        *graph_cases.CYCLE,
        *graph_cases.scatter(),
        graph_cases.cash("d1", 3, "A", "ATM-9"),
        t("self", 4, "B", "B", 77),
        t("same-time-b", 6, "C", "D", 10),
        t("same-time-a", 6, "D", "C", 10),
    ]


def test_context_keeps_the_columns_patterns_read_with_transfers_first_in_time_order() -> None:
    rows = _rows()
    ctx = context(rows)
    tx = ctx.transactions
    assert tx.columns == list(TX_COLUMNS)
    every = pl.DataFrame(rows, infer_schema_length=None)
    expected = (
        every.filter(
            (pl.col("src_account") != pl.col("dst_account"))
            & ~pl.col("channel").is_in(CASH_CHANNELS)
        )
        .sort("ts", "txn_id")
        .get_column("txn_id")
    )
    got = transfers(ctx)
    assert got.get_column("txn_id").to_list() == expected.to_list()
    assert tx.head(got.height).get_column("txn_id").to_list() == expected.to_list()
    assert sorted(tx.get_column("txn_id").to_list()) == sorted(every.get_column("txn_id"))
    # the time-ordered transfers of money paths are the same rows in the same order
    assert by_time(ctx).get_column("txn_id").to_list() == expected.to_list()


def test_a_shuffled_input_gives_the_same_context() -> None:
    ctx = context(_rows())
    shuffled = context(list(reversed(_rows())))
    assert_frame_equal(ctx.transactions, shuffled.transactions)
    assert_frame_equal(transfers(ctx), transfers(shuffled))


def test_a_frame_in_graph_order_is_kept_as_it_is() -> None:
    ordered = context(_rows()).transactions
    assert in_graph_order(ordered) is ordered
    assert graph_columns(["memo", "txn_id", "currency", "device_id"]) == ["txn_id", "device_id"]


def test_reading_a_file_in_graph_order_equals_ordering_it_in_memory(tmp_path: Path) -> None:
    """The graph stage reads its transactions a column at a time in graph order; the rows
    (several row groups, out of order) must come out as `in_graph_order` gives them."""
    frame = conform(pl.DataFrame(list(reversed(_rows())), infer_schema_length=None), "transactions")
    frame = frame.collect().with_columns(pl.lit("x").alias("memo"))
    path = tmp_path / "transactions.parquet"
    frame.write_parquet(path, row_group_size=3)
    got = read_in_graph_order(path)
    assert got.columns == graph_columns(frame.columns)
    assert_frame_equal(got, in_graph_order(frame.select(got.columns)))
    assert got.get_column("txn_id").to_list() != frame.get_column("txn_id").to_list()
    ordered = tmp_path / "ordered.parquet"
    got.write_parquet(ordered)
    assert_frame_equal(read_in_graph_order(ordered), got)
