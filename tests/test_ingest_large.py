"""A large input's raw gate reads the staged file lazily and streams what passes: the same
canonical tables, quarantine and counts as an input held in memory, in one process and as
the DAG's separate tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.pipeline.job import Job
from flows87.pipeline.plan import step
from flows87.pipeline.stages import ingest
from flows87.pipeline.stages.config import RunConfig
from flows87.rundir import RunDir

FIXTURE = Path(__file__).parent / "fixtures" / "canonical" / "csv"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The canonical fixture with a row that does not parse and a duplicated txn_id."""
    folder = tmp_path_factory.mktemp("data")
    lines = (FIXTURE / "transactions.csv").read_text(encoding="utf-8").splitlines()
    bad = "t5,2026-01-08T10:00:00Z,A1,A3,12;50,USD,,p2p,,,,,,,true,ht_hotel_pattern,s-2"
    dup = "t1,2026-01-08T11:00:00Z,A2,A5,50,USD,50,p2p,,,,,,,false,,"
    (folder / "transactions.csv").write_text("\n".join([*lines, bad, dup]) + "\n")
    (folder / "accounts.csv").write_bytes((FIXTURE / "accounts.csv").read_bytes())
    return folder


def _ingest(
    data: Path, run: Path, in_process: bool, interval: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    start = datetime(2026, 1, 6, tzinfo=UTC)  # with `interval`, the first two fall before it
    window = {
        "select_interval": True,
        "interval_start": start,
        "interval_end": start + timedelta(3),
    }
    config = RunConfig(
        max_reject_fraction=0.5, max_failed_fraction=0.5, **(window if interval else {})
    )
    if in_process:
        job = Job.local(run, config, source=str(data))
    else:
        job = Job(RunDir(run), config, source=str(data), command="flows87_daily")
    return step("read").function()(job), step("gate_raw").function()(job)


@pytest.mark.parametrize(("in_process", "interval"), [(True, False), (False, False), (True, True)])
def test_a_large_input_is_gated_from_its_staged_file(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_process: bool, interval: bool
) -> None:
    """Above LARGE_ROWS the files are also parsed to RUN/staging/ (rejects.staged) and the
    transactions streamed to staging/transactions.parquet, never held whole."""
    small = _ingest(data, tmp_path / "small", in_process, interval)
    monkeypatch.setattr(ingest, "LARGE_ROWS", 2)
    large = _ingest(data, tmp_path / "large", in_process, interval)

    assert (tmp_path / "large" / "staging" / "transactions.parquet").exists()
    assert not list((tmp_path / "large" / "staging").glob("parsed-*"))  # removed once read
    if interval:
        assert small[0]["outside_interval_transactions"] == 2
    assert large[0] == {**small[0], "run_dir": str(tmp_path / "large")}
    assert {**large[1], "run_dir": ""} == {**small[1], "run_dir": ""}
    # a duplicated txn_id, both of them (the first one falls before the interval)
    assert small[1]["failed_checks"]["transactions"] == (0 if interval else 2)
    for name in ("transactions.parquet", "accounts.parquet", "quarantine/raw_transactions.parquet"):
        assert_frame_equal(
            pl.read_parquet(tmp_path / "large" / name), pl.read_parquet(tmp_path / "small" / name)
        )
