"""The cases stage above its size threshold (transactions read from the file, pairs grouped in
batches) writes the tables of the in-memory path, value for value and row for row."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.pipeline.job import Job
from flows87.pipeline.stages import cases as stage

neighbours = sys.modules["flows87.pipeline.cases.neighbours"]


def _outputs(run_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    return (
        pl.read_parquet(run_dir / "cases.parquet"),
        pl.read_parquet(run_dir / "accounts_scored.parquet"),
    )


def test_large_path_writes_the_tables_of_the_in_memory_path(
    labelled_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(labelled_run, run_dir)
    job = Job.local(run_dir)
    stage.cases(job)
    cases, scored = _outputs(run_dir)
    assert cases.height and scored["risk_score"].n_unique() > 100
    n = pl.scan_parquet(run_dir / "transactions.parquet").select(pl.len()).collect().item()
    monkeypatch.setattr(stage, "LARGE_TRANSACTIONS", 0)
    monkeypatch.setattr(neighbours, "PAIR_BATCH_ROWS", n // 5)  # six batches of pairs
    stage.cases(job)
    big_cases, big_scored = _outputs(run_dir)
    assert_frame_equal(big_cases, cases, check_exact=True)
    assert_frame_equal(big_scored, scored, check_exact=True)


def test_pairs_in_batches_give_the_neighbour_risk_of_one_grouping(labelled_run: Path) -> None:
    tx = pl.read_parquet(labelled_run / "transactions.parquet")
    anomaly = pl.read_parquet(labelled_run / "anomaly_scores.parquet")
    flagged = anomaly.sort("anomaly_risk", "account_id", descending=[True, False]).head(40)
    whole = stage.one_off_neighbours(tx, flagged, 0.05).sort("account_id")
    assert whole.height > 20
    for rows in (tx.height // 40, tx.height // 3):
        batched = stage.one_off_neighbours(tx.lazy(), flagged, 0.05, batch_rows=rows)
        assert_frame_equal(batched.sort("account_id"), whole, check_exact=True)
