"""The DAG's read, a task per input file (list_inputs, read_file per piece, then the raw gate on
their union), publishes what the one `read` step does on the same input: the same canonical
tables, quarantine and gate counts, whether the accounts are given or derived, small or large."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.errors import InputError, QualityGateError
from flows87.io import read_json, write_parquet
from flows87.pipeline.job import Job
from flows87.pipeline.plan import step
from flows87.pipeline.stages import ingest, ingest_files
from flows87.pipeline.stages.config import RunConfig
from flows87.research.synth import generate
from flows87.rundir import RunDir


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    made = generate(800, 7, 9)
    tx = made.transactions.sort("ts", "txn_id")
    return tx, made.accounts


def _landing(
    tx: pl.DataFrame, accounts: pl.DataFrame | None, folder: Path
) -> tuple[Path, pl.DataFrame]:
    """Three files a day apart-ish (the first third of the rows, then two more), the second a
    CSV with a row that does not parse, the third repeating a txn_id of the first."""
    cuts = [0, tx.height // 3, 2 * tx.height // 3, tx.height]
    parts = [tx.slice(cuts[i], cuts[i + 1] - cuts[i]) for i in range(3)]
    parts[2] = parts[2].with_columns(
        txn_id=pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit(parts[0]["txn_id"][3]))
        .otherwise(pl.col("txn_id"))
    )
    write_parquet(parts[0], folder / "transactions" / "2026-01-01.parquet")
    second = folder / "transactions" / "2026-01-02.csv"
    parts[1].with_columns(
        amount=pl.when(pl.int_range(pl.len()) == 4)
        .then(pl.lit("12;50"))
        .otherwise(pl.col("amount").cast(pl.String))
    ).write_csv(second)
    write_parquet(parts[2], folder / "transactions" / "2026-01-03.parquet")
    if accounts is not None:
        write_parquet(accounts, folder / "accounts.parquet")
    return second, parts[0]


def _by_tasks(source: Path, run: Path, config: RunConfig) -> dict[str, Any]:
    """The DAG's read: each task a separate process (no memory handed over)."""
    job = Job(RunDir(run), config, source=str(source), command="flows87_daily")
    pieces = step("list_inputs").function()(job)
    for piece in pieces:
        step("read_file").function()(job, piece)
    step("gate_accounts").function()(job)
    for piece in pieces:
        step("gate_file").function()(job, piece)
    return {"pieces": pieces, **step("gate_raw").function()(job)}


def _in_process(source: Path, run: Path, config: RunConfig) -> dict[str, Any]:
    job = Job.local(run, config, source=str(source))
    step("read").function()(job)
    return dict(step("gate_raw").function()(job))


def _same_run(a: Path, b: Path) -> None:
    for name in ("transactions", "accounts", "quarantine/raw_transactions"):
        assert_frame_equal(
            pl.read_parquet(a / f"{name}.parquet"), pl.read_parquet(b / f"{name}.parquet")
        )
    stats = [
        read_json(r / "quality" / "raw_transactions.json")["meta"]["flows87"]["stats"]
        for r in (a, b)
    ]
    assert stats[0] == stats[1]


@pytest.mark.parametrize("given", [True, False], ids=["accounts", "derived"])
def test_a_task_per_file_gates_what_one_read_gates(
    data: tuple[pl.DataFrame, pl.DataFrame], given: bool, tmp_path: Path
) -> None:
    tx, accounts = data
    second, first = _landing(tx, accounts if given else None, tmp_path / "in")
    # the data interval begins after the first file's rows: its task keeps none of them
    start = first["ts"].max() + timedelta(seconds=1)
    config = RunConfig(
        select_interval=True,
        interval_start=start,
        interval_end=start + timedelta(days=30),
        max_reject_fraction=0.5,
    )
    tasks = _by_tasks(tmp_path / "in", tmp_path / "tasks", config)
    one = _in_process(tmp_path / "in", tmp_path / "one", config)
    assert tasks.pop("pieces") == [0, 1, 2]
    assert tasks.pop("warnings") == one.pop("warnings")
    assert {k: v for k, v in tasks.items() if k != "run_dir"} == {
        k: v for k, v in one.items() if k != "run_dir"
    }
    assert tasks["outside_interval"]["transactions"] == first.height
    _same_run(tmp_path / "tasks", tmp_path / "one")
    # the file-2 row that did not parse is quarantined naming file 2 (file 3's repeat of a
    # file-1 txn_id is no duplicate: file 1's rows fall before the interval)
    held = pl.read_parquet(tmp_path / "tasks" / "quarantine" / "raw_transactions.parquet")
    assert held.filter(pl.col("expectation") == "parse").select(
        "source_file", "source_row"
    ).rows() == [(str(second), 5)]
    assert held.height == 1 and tasks["quarantined"]["transactions"] == 1
    first_piece = read_json(tmp_path / "tasks" / "stages" / "read_file-0000.json")
    assert first_piece["counts"]["transactions"] == 0  # no error: the others' rows are inside
    assert read_json(tmp_path / "tasks" / "stages" / "read.json")["input"]["files"]


def test_large_pieces_are_gated_from_their_files(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above LARGE_ROWS each piece is parsed to its folder and the gate scans the union."""
    tx, accounts = data
    _landing(tx, accounts, tmp_path / "in")
    config = RunConfig(max_reject_fraction=0.5)
    want = _in_process(tmp_path / "in", tmp_path / "one", config)
    monkeypatch.setattr(ingest, "LARGE_ROWS", 100)
    got = _by_tasks(tmp_path / "in", tmp_path / "tasks", config)
    assert got["transactions"] == want["transactions"] == tx.height - 3  # a parse, 2 repeats
    _same_run(tmp_path / "tasks", tmp_path / "one")


def test_no_file_inside_the_interval_stops_at_the_gate(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    tx, accounts = data
    _landing(tx, accounts, tmp_path / "in")
    start = tx["ts"].max() + timedelta(days=1)
    config = RunConfig(
        select_interval=True, interval_start=start, interval_end=start + timedelta(days=1)
    )
    with pytest.raises(InputError, match="falls in the data interval"):
        _by_tasks(tmp_path / "in", tmp_path / "tasks", config)


def test_any_other_input_is_one_piece_read_as_read_reads_it(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    tx, accounts = data
    write_parquet(tx, tmp_path / "in" / "transactions.parquet")
    job = Job(RunDir(tmp_path / "run"), RunConfig(), source=str(tmp_path / "in"))
    assert step("list_inputs").function()(job) == [0]
    step("read_file").function()(job, 0)
    record = read_json(tmp_path / "run" / "stages" / "read.json")  # as the `read` step's
    assert record["counts"]["transactions"] == tx.height and record["input"]["files"]
    # a later `read` of the same run directory leaves no pieces for the gate to take
    step("read").function()(job)
    assert not ingest_files.listed(tmp_path / "run" / "staging")


def test_a_piece_read_again_drops_its_gate_and_a_new_listing_drops_every_piece(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    """Stale gate results never reach the merge: reading a piece again removes its gate's
    results (the merge then says to gate it), listing the input again removes every piece
    (a chunked gate's spill folder too) and the accounts the last gate passed."""
    tx, accounts = data
    _landing(tx, accounts, tmp_path / "in")
    config = RunConfig(max_reject_fraction=0.5)
    _by_tasks(tmp_path / "in", tmp_path / "run", config)
    staging = tmp_path / "run" / "staging"
    job = Job(RunDir(tmp_path / "run"), config, source=str(tmp_path / "in"), command="dag")
    step("read_file").function()(job, 1)
    assert not (ingest_files.piece_folder(staging, 1) / "gate-raw_transactions.pkl").exists()
    with pytest.raises(QualityGateError, match="piece 0001 was not gated"):
        step("gate_raw").function()(job)
    (ingest_files.piece_folder(staging, 0) / "gate" / "chunks-x").mkdir(parents=True)
    assert step("list_inputs").function()(job) == [0, 1, 2]
    assert not list(ingest_files.folder(staging).glob("0*"))
    assert not (ingest_files.folder(staging) / ingest_files.ACCOUNTS_PASSED).exists()
