"""The cases stage as partitioned work (group once, rank per partition, merge) writes the bytes
of the one-process stage: cases.parquet, accounts_scored.parquet and the record's counts."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.io import read_json, write_parquet
from flows87.pipeline.job import Job
from flows87.pipeline.stages import cases as stage
from flows87.pipeline.stages import cases_parts, parts

neighbours = sys.modules["flows87.pipeline.cases.neighbours"]

OUTPUTS = ("cases.parquet", "accounts_scored.parquet")


def _partitioned(run_dir: Path, count: int, order: list[int], memo: bool) -> None:
    """group_cases, score_accounts per partition in `order`, merge_cases: in one process with
    the hand-over in memory (`memo`) or through the run directory's files (the DAG's way)."""
    ids = pl.read_parquet(run_dir / "partitions.parquet")["account_id"]
    write_parquet(parts.assign(ids, count), run_dir / "partitions.parquet")
    job = Job.local(run_dir)
    if not memo:
        job.memo = None
    cases_parts.group_cases(job)
    for part in order:
        cases_parts.score_accounts(job, part)
    cases_parts.merge_cases(job)


def _check(labelled_run: Path, tmp_path: Path, order: list[int], memo: bool) -> None:
    """The fixture's run wrote its cases with `cases(job)` (`flows87 run`): the reference."""
    done, split = labelled_run, tmp_path / "split"
    expected = read_json(done / "stages" / "cases.json")["counts"]
    shutil.copytree(labelled_run, split)
    _partitioned(split, len(order), order, memo)
    scored = pl.read_parquet(done / "accounts_scored.parquet")
    # real: cases, neighbour evidence and ties broken by account id are all in the comparison
    assert pl.read_parquet(done / "cases.parquet").height >= 2
    assert scored["case_id"].drop_nulls().n_unique() >= 2
    assert scored["risk_score"].n_unique() > 100
    for name in OUTPUTS:
        assert (split / name).read_bytes() == (done / name).read_bytes(), name
    record = read_json(split / "stages" / "cases.json")
    assert record["counts"] == expected
    assert record["warnings"] == read_json(done / "stages" / "cases.json")["warnings"]


def test_four_partitions_write_the_bytes_of_one_process(labelled_run: Path, tmp_path: Path) -> None:
    _check(labelled_run, tmp_path, [2, 0, 3, 1], memo=False)


def test_batched_paths_write_the_bytes_of_one_process(
    labelled_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Transactions read from the file as codes, pairs grouped in batches, each partition's
    accounts in several batches: the same bytes, with the hand-over in memory (2 partitions:
    the test's time)."""
    n = pl.scan_parquet(labelled_run / "transactions.parquet").select(pl.len()).collect().item()
    monkeypatch.setattr(stage, "LARGE_TRANSACTIONS", 0)
    monkeypatch.setattr(neighbours, "PAIR_BATCH_ROWS", n // 5)
    monkeypatch.setattr(parts, "BATCH_TRANSACTIONS", n // 4)  # 2 batches a partition
    _check(labelled_run, tmp_path, [1, 0], memo=True)
    record = read_json(tmp_path / "split" / "stages" / "score_accounts-0001.json")
    assert record["counts"]["batches"] == 2


def test_neighbour_evidence_of_a_partition_is_the_whole_runs(labelled_run: Path) -> None:
    """Each partition's neighbour_risk, from the transfers touching its accounts and the whole
    run's context, equals one_off_neighbours' on every transfer, with infrastructure accounts
    (a large share) left out."""
    tx = pl.read_parquet(labelled_run / "transactions.parquet")
    anomaly = pl.read_parquet(labelled_run / "anomaly_scores.parquet")
    flagged = anomaly.sort("anomaly_risk", "account_id", descending=[True, False]).head(40)
    for share, least in ((0.01, 3), (0.05, 20)):  # at 1%, most counterparties are infrastructure
        expected = neighbours.one_off_neighbours(tx, flagged, share).sort("account_id")
        assert expected.height > least
        context, origin = neighbours.neighbour_context(tx.lazy(), flagged, share)
        ids = pl.concat([tx["src_account"], tx["dst_account"]])
        table = parts.assign(ids, 3)
        found = []
        for part in range(3):
            members = table.filter(pl.col("part") == part)["account_id"]
            touching = tx.filter(
                pl.col("src_account").is_in(members.implode())
                | pl.col("dst_account").is_in(members.implode())
            )
            found.append(neighbours.neighbour_evidence(touching, context, origin, members))
        got = pl.concat(found).sort("account_id")
        assert_frame_equal(got, expected, check_exact=True)
