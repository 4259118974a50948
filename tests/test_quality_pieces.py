"""A gate run a piece (an input file) at a time and merged finds what one run on the union finds:
the same passed rows, quarantine, counts and GX results, whichever way the rows are cut, with
repeats within a piece, across pieces, and on rows that fail other checks too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_quality import PARAMS, transactions
from test_quality_chunks import _bad_transactions, _many_failures

from flows87.errors import QualityGateError
from flows87.pipeline.quality import pieces, run_gate
from flows87.pipeline.quality.suites import SUITES_DIR


def _frame() -> pl.DataFrame:
    """Every failure of the chunk tests, plus repeats far apart: t9 at rows 9 and 31 (amount
    at 31 bad too), t15 three times (15, 16, 35)."""
    return _bad_transactions().with_columns(
        pl.when(pl.int_range(pl.len()) == 31)
        .then(pl.lit("t9"))
        .when(pl.int_range(pl.len()).is_in([16, 35]))
        .then(pl.lit("t15"))
        .otherwise(pl.col("txn_id"))
        .alias("txn_id"),
        pl.when(pl.int_range(pl.len()) == 31)
        .then(pl.lit(-3.0))
        .otherwise(pl.col("amount"))
        .alias("amount"),
    )


def _gated(tmp: Path, frame: pl.DataFrame, cuts: list[int], suites_dir: Path | None = None) -> Any:
    """The gate on `frame`: whole (no cuts) or a piece per cut, each gated alone, then merged."""
    folders = []
    bounds = [0, *cuts, frame.height]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        folder = tmp / "pieces" / f"{i:04d}"
        write = frame.slice(a, b - a)
        piece = tmp / "in" / f"{i}.parquet"
        piece.parent.mkdir(parents=True, exist_ok=True)
        write.write_parquet(piece)
        pieces.gate_piece(
            pl.scan_parquet(piece),
            "raw_transactions",
            folder,
            params=PARAMS,
            suites_dir=suites_dir,
        )
        folders.append(folder)
    merged = pieces.merged(folders, "raw_transactions") if cuts else None
    result = run_gate(
        frame.lazy() if cuts else frame,
        "raw_transactions",
        tmp,
        params=PARAMS,
        max_failed_fraction=1,
        suites_dir=suites_dir,
        validated=merged,
    )
    gx = json.loads(result.result_path.read_text())
    passed = result.passed if isinstance(result.passed, pl.DataFrame) else result.passed.collect()
    report = result.report_path.read_text().replace(str(tmp), "RUN")
    return passed, result.quarantined, result.stats, gx["results"], gx["statistics"], report


def _same(got: Any, want: Any) -> None:
    assert_frame_equal(got[0], want[0])
    assert_frame_equal(got[1], want[1])
    assert got[2] == want[2]
    assert got[3] == want[3]  # every result: counts, percentages, lists of values
    assert got[4] == want[4]
    assert got[5] == want[5]


@pytest.mark.parametrize(
    "cuts", [[20], [10, 32], [0, 9, 16, 31, 40], [1, 2, 3, 36]], ids=["2", "3", "empty", "5"]
)
def test_pieces_merged_give_the_unions_result(tmp_path: Path, whole: Any, cuts: list[int]) -> None:
    frame = _frame()
    held = whole[1].get_column("txn_id").to_list()
    assert {"t9", "t15", "t3"} <= set(held)  # the repeats are quarantined, in every piece
    assert held.count("t15") == 3
    _same(_gated(tmp_path / "cut", frame, cuts), whole)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _gated(tmp_path_factory.mktemp("whole"), _frame(), [])


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cuts=st.lists(st.integers(0, 40), max_size=4).map(sorted))
def test_any_cut_gives_the_unions_result(tmp_path: Path, whole: Any, cuts: list[int]) -> None:
    folder = tmp_path / f"run-{'-'.join(map(str, cuts))}"
    shutil.rmtree(folder, ignore_errors=True)
    _same(_gated(folder, _frame(), cuts or [40]), whole)


def test_an_expectation_that_cannot_merge_runs_on_the_union(tmp_path: Path) -> None:
    """`mostly` makes success a share of all rows: the merge runs it on the union itself."""
    suite = json.loads((SUITES_DIR / "raw_transactions.json").read_text())
    for exp in suite["expectations"]:
        if (
            exp["type"] == "expect_column_values_to_be_between"
            and exp["kwargs"]["column"] == "amount"
        ):
            exp["kwargs"]["mostly"] = 0.95
    custom = tmp_path / "suites"
    custom.mkdir()
    (custom / "raw_transactions.json").write_text(json.dumps(suite))
    frame = _frame()
    whole = _gated(tmp_path / "whole", frame, [], custom)
    got = _gated(tmp_path / "cut", frame, [13, 27], custom)
    _same(got, whole)
    saved = pieces._load(tmp_path / "cut" / "pieces" / "0000", "raw_transactions")
    run_in_piece = {r.expectation_config.kwargs.get("mostly") for r in saved["results"]}
    assert 0.95 not in run_in_piece


def test_a_piece_read_again_after_its_gate_is_an_error(tmp_path: Path) -> None:
    frame = transactions(n=12)
    folders = []
    for i, part in enumerate((frame.head(6), frame.tail(6))):
        folders.append(tmp_path / f"{i}")
        pieces.gate_piece(part, "raw_transactions", folders[-1], params=PARAMS)
    grown = pl.concat([frame, frame.tail(1)])
    with pytest.raises(QualityGateError, match="gate it again"):
        run_gate(
            grown,
            "raw_transactions",
            tmp_path,
            params=PARAMS,
            validated=pieces.merged(folders, "raw_transactions"),
        )
    with pytest.raises(QualityGateError, match="was not gated"):
        run_gate(
            frame,
            "raw_transactions",
            tmp_path,
            params=PARAMS,
            validated=pieces.merged([*folders, tmp_path / "2"], "raw_transactions"),
        )


def test_more_failures_than_gx_lists_merge_to_the_unions_result(tmp_path: Path) -> None:
    """GX lists the values of the first 200 failing rows of a check only; repeats across the
    pieces (the second half of the rows repeats ids of the first) too."""
    frame = _many_failures()
    whole = _gated(tmp_path / "whole", frame, [])
    assert whole[2]["rows_failed_checks"] > 400
    _same(_gated(tmp_path / "cut", frame, [300, 600]), whole)
