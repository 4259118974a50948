"""The detectors stage worked through in account batches (the population's matrix built and the
accounts scored a batch at a time, the population not kept between steps): the same anomaly
scores and signals as in one piece, with the batch size lowered so a small input is cut into
many batches, in one process and as the DAG's tasks, with one partition and with three."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.io import write_parquet
from flows87.pipeline.detectors import load_settings
from flows87.pipeline.features import NUMERIC
from flows87.pipeline.job import Job
from flows87.pipeline.plan import PLAN
from flows87.pipeline.run import run_steps
from flows87.pipeline.stages import detectors, parts
from flows87.pipeline.stages.config import RunConfig
from flows87.rundir import RunDir

N = 900


def _features() -> pl.DataFrame:
    """Two periods of the 7d window and one 30d row per account, sorted by account; some
    accounts below min_transactions, some columns constant, nulls, NaNs and many ties."""
    rng = np.random.default_rng(5)
    rows = []
    for window, periods in (("7d", 2), ("30d", 1)):
        for period in range(periods):
            data: dict[str, object] = {
                c: rng.poisson(rng.uniform(0.2, 3.0), N).astype(float) for c in NUMERIC
            }
            data["in_sum"] = rng.lognormal(4, 1.5, N).round(2)
            data["night_in_share"] = np.where(rng.random(N) < 0.1, np.nan, rng.beta(1, 9, N))
            data["hotel_count"] = np.zeros(N)
            frame = pl.DataFrame(
                {"account_id": [f"acc{i:05d}" for i in range(N)], "window": window, **data}
            ).with_columns(pl.lit(period).alias("period"))
            rows.append(frame)
    out = pl.concat(rows).with_columns(
        pl.when(pl.int_range(pl.len()) % 13 == 0).then(None).otherwise(pl.col("out_sum"))
    )
    return out.sort("account_id", "window", "period", maintain_order=True).drop("period")


@pytest.fixture(scope="module")
def features() -> pl.DataFrame:
    return _features()


@pytest.fixture(scope="module")
def whole(
    features: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One piece, in one process: the population kept between the steps."""
    return _run(tmp_path_factory.mktemp("whole"), features, in_process=True, partitions=1)


def _run(
    base: Path, features: pl.DataFrame, *, in_process: bool, partitions: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    run = RunDir(base)
    write_parquet(features, run.features)
    write_parquet(parts.assign(features["account_id"], partitions), run.partitions)
    if in_process:
        job = Job.local(run, RunConfig(), partitions=partitions)
    else:
        job = Job(run, RunConfig(), partitions=partitions, command="dag")
    run_steps(job, [s for s in PLAN if s.stage == "detectors"])
    return pl.read_parquet(run.anomaly_scores), pl.read_parquet(run.stage_signals("detectors"))


@pytest.mark.parametrize(
    ("in_process", "partitions", "batch"), [(True, 1, 200), (False, 1, 300), (False, 3, 90)]
)
def test_batches_give_the_scores_and_signals_of_one_piece(
    features: pl.DataFrame,
    whole: tuple[pl.DataFrame, pl.DataFrame],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_process: bool,
    partitions: int,
    batch: int,
) -> None:
    scores, signals = whole
    assert scores.height > N // 2 and signals.height > 0
    monkeypatch.setattr(detectors, "BATCH_ACCOUNTS", batch)
    got_scores, got_signals = _run(
        tmp_path / "batched", features, in_process=in_process, partitions=partitions
    )
    assert_frame_equal(got_scores, scores, check_exact=True)
    assert_frame_equal(got_signals, signals, check_exact=True)
    # the input was cut into batches: the whole window, and each partition's accounts
    job = Job(RunDir(tmp_path / "batched"), RunConfig(), partitions=partitions)
    settings = load_settings()
    assert len(detectors._batches(job, settings, None, batch)) >= N // batch
    members = parts.members(job, 0)
    assert len(detectors._batches(job, settings, members, batch)) >= (1 if members is None else 2)
