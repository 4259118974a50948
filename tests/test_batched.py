"""A partition's features and rules worked through in account batches within one process (the
peak then bounded by the batch, not the input): the same tables as in one piece, with the batch
size lowered so a small input is cut into many batches, in one process and as the DAG's tasks."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.io import write_parquet
from flows87.pipeline.job import Job
from flows87.pipeline.plan import upto
from flows87.pipeline.run import run_steps
from flows87.pipeline.stages import features, parts
from flows87.pipeline.stages.config import RunConfig
from flows87.research.synth import generate
from flows87.rundir import RunDir


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    data = generate(800, 10, seed=3)
    # a device shared by accounts of different batches: the shared identifiers are run-wide
    tx = data.transactions.with_columns(
        pl.when(pl.int_range(pl.len()) % 97 == 0)
        .then(pl.lit("dev-shared"))
        .otherwise(pl.col("device_id"))
        .alias("device_id")
    )
    write_parquet(data.accounts, folder / "accounts.parquet")
    write_parquet(tx, folder / "transactions.parquet")
    return folder


@pytest.fixture(scope="module")
def whole(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("whole")
    run_steps(Job.local(run, RunConfig(), source=str(source)), upto("merge_rules"))
    return run


def _job(run: Path, source: Path, in_process: bool, partitions: int) -> Job:
    if in_process:
        return Job.local(run, RunConfig(), source=str(source), partitions=partitions)
    return Job(RunDir(run), RunConfig(), source=str(source), partitions=partitions, command="dag")


@pytest.mark.parametrize(("in_process", "partitions"), [(True, 1), (False, 2)])
def test_batches_give_the_tables_of_one_piece(
    source: Path,
    whole: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_process: bool,
    partitions: int,
) -> None:
    monkeypatch.setattr(parts, "BATCH_TRANSACTIONS", 1500)
    monkeypatch.setattr(features, "GATE_ROWS", 1000)
    run = tmp_path / "run"
    run_steps(_job(run, source, in_process, partitions), upto("merge_rules"))

    for step in ("features", "rules"):
        records = [json.loads(p.read_text()) for p in sorted((run / "stages").glob(f"{step}-*"))]
        assert len(records) == partitions
        assert all(r["counts"]["batches"] >= 3 for r in records), records
    assert pl.read_parquet(whole / "signals_rules.parquet").height > 0
    shared = pl.read_parquet(whole / "features.parquet")["shared_id_parties"]
    assert shared.max() > 1, "no identifier shared across batches: the test proves less"
    for name in ("features.parquet", "signals_rules.parquet", "signals_held_rules.parquet"):
        assert_frame_equal(pl.read_parquet(run / name), pl.read_parquet(whole / name))
    for name in ("quality/features.json",):
        got, want = json.loads((run / name).read_text()), json.loads((whole / name).read_text())
        assert got["statistics"] == want["statistics"]
