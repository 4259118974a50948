"""Transactions delivered as several files (a file per day or per reporting entity) read as the
union of the files: the same canonical tables as one file, each reject naming its own file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87.errors import InputError
from flows87.io import write_parquet
from flows87.pipeline import ingest
from flows87.pipeline.ingest.detect import detect_format
from flows87.pipeline.run import ingest as run_ingest
from flows87.pipeline.stages.config import RunConfig
from flows87.research.synth import generate


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    made = generate(800, 7, 5)
    return made.transactions, made.accounts


def _write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        return write_parquet(frame, path)
    frame.write_csv(path)
    return path


def _split(
    tx: pl.DataFrame, accounts: pl.DataFrame | None, folder: Path, names: list[str]
) -> list[int]:
    """`tx` cut in len(names) runs of rows, written under `folder` with those names; the
    accounts beside them. The runs' row counts."""
    cuts = [0, tx.height // 3, 2 * tx.height // 3, tx.height]
    for i, name in enumerate(names):
        _write(tx.slice(cuts[i], cuts[i + 1] - cuts[i]), folder / name)
    if accounts is not None:
        _write(accounts, folder / "accounts.parquet")
    return [cuts[i + 1] - cuts[i] for i in range(len(names))]


def _tables(path: Path) -> list[pl.DataFrame]:
    """The tables read, without lineage (a split input's rows also name their file)."""
    result = ingest.read(path)
    tx = result.transactions.collect()
    return [tx.drop("source_row", "source_file", strict=False), result.accounts.collect(),
            result.rejects]  # fmt: skip


LAYOUTS = {
    "folder of parquet and csv": [
        "transactions/a.csv",
        "transactions/b.parquet",
        "transactions/c.csv",
    ],
    "beside the accounts": [
        "transactions-1.parquet",
        "transactions-2.csv",
        "transactions-3.parquet",
    ],
}


@pytest.mark.parametrize("names", LAYOUTS.values(), ids=list(LAYOUTS))
@pytest.mark.parametrize("with_accounts", [True, False], ids=["accounts", "derived"])
def test_the_same_rows_in_three_files_read_as_one_file(
    data: tuple[pl.DataFrame, pl.DataFrame], names: list[str], with_accounts: bool, tmp_path: Path
) -> None:
    tx, accounts = data
    one = tmp_path / "one"
    _write(tx, one / "transactions.parquet")
    if with_accounts:
        _write(accounts, one / "accounts.parquet")
    sizes = _split(tx, accounts if with_accounts else None, tmp_path / "split", names)
    split = tmp_path / "split"
    assert detect_format(split) == "canonical"
    assert ingest.pieces(split) == 3
    for got, want in zip(_tables(split), _tables(one), strict=True):
        assert_frame_equal(got, want)
    # source_row is each file's own row, source_file that file (one file's rows name none)
    lineage = ingest.read(split).transactions.select("source_file", "source_row").collect()
    assert lineage.rows() == [
        (str(split / name), r)
        for name, n in zip(names, sizes, strict=True)
        for r in range(1, n + 1)
    ]
    assert "source_file" not in ingest.read(one).transactions.collect_schema().names()
    # read a piece at a time: the union of the pieces' transactions is the whole
    pieces = [ingest.read(split, piece=i) for i in range(3)]
    union = pl.concat([p.transactions.collect() for p in pieces], how="diagonal_relaxed")
    assert_frame_equal(union, ingest.read(split).transactions.collect())
    assert_frame_equal(union.drop("source_row", "source_file"), _tables(one)[0])
    assert [p.accounts.collect().height for p in pieces][1:] == [0, 0]
    if not with_accounts:  # each piece hands over what the accounts are derived from
        from flows87.pipeline.ingest.derived import accounts_from_sides

        sides = pl.concat([p.account_sides for p in pieces if p.account_sides is not None])
        assert_frame_equal(accounts_from_sides(sides, True).collect(), _tables(one)[1])


def test_a_bad_row_in_the_second_file_is_rejected_naming_that_file(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    tx, accounts = data
    names = ["transactions/01.parquet", "transactions/02.csv", "transactions/03.parquet"]
    sizes = _split(tx, accounts, tmp_path, names)
    second = tmp_path / names[1]
    lines = second.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[5].split(",")  # data row 5 of file 2
    cells[header.index("amount")] = "12,5"
    lines[5] = ",".join(cells).replace("12,5", '"12,5"')
    second.write_text("\n".join(lines) + "\n")
    result = ingest.read(tmp_path, max_reject_fraction=0.5)
    bad = result.rejects.row(0, named=True)
    assert result.rejects.height == 1
    assert (bad["source_file"], bad["source_row"], bad["column"]) == (str(second), 5, "amount")
    assert result.transactions.collect().height == sum(sizes) - 1
    # and the raw gate quarantines it so
    run_dir = tmp_path / "run"
    summary = run_ingest(tmp_path, run_dir, RunConfig(max_failed_fraction=0.5))
    assert summary["quarantined"]["transactions"] == 1
    held = pl.read_parquet(run_dir / "quarantine" / "raw_transactions.parquet")
    assert held.select("source_file", "source_row", "expectation").rows() == [
        (str(second), 5, "parse")
    ]


def test_rows_failing_gate_checks_name_their_file_and_row(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    """Rows that parse but fail the raw gate, in the 2nd of 3 files (row 5 outside the
    interval, row 7 a txn_id file 3's row 2 repeats) and a parse reject there (row 6): the
    quarantine names each row's file and row, in (file, row) order."""
    tx, accounts = data
    names = ["transactions/01.parquet", "transactions/02.csv", "transactions/03.parquet"]
    sizes = _split(tx, accounts, tmp_path, names)
    start, end = tx["ts"].min(), tx["ts"].max() + timedelta(seconds=1)
    two = pl.read_csv(tmp_path / names[1], infer_schema=False).with_columns(
        ts=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("1999-01-01T00:00:00Z"))
        .otherwise(pl.col("ts")),
        amount=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("twelve"))
        .otherwise(pl.col("amount")),
    )  # fmt: skip
    two.write_csv(tmp_path / names[1])
    three = pl.read_parquet(tmp_path / names[2])
    repeated = two["txn_id"][6]
    three = three.with_columns(
        txn_id=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(repeated)).otherwise("txn_id")
    )
    write_parquet(three, tmp_path / names[2])
    run_dir = tmp_path / "run"
    config = RunConfig(interval_start=start, interval_end=end, max_failed_fraction=0.5)
    summary = run_ingest(tmp_path, run_dir, config)
    assert summary["quarantined"]["transactions"] == 4
    held = pl.read_parquet(run_dir / "quarantine" / "raw_transactions.parquet")
    file_2, file_3 = str(tmp_path / names[1]), str(tmp_path / names[2])
    assert held.select("source_file", "source_row", "expectation").rows() == [
        (file_2, 5, "expect_column_values_to_be_between"),
        (file_2, 6, "parse"),
        (file_2, 7, "expect_column_values_to_be_unique"),
        (file_3, 2, "expect_column_values_to_be_unique"),
    ]
    published = pl.read_parquet(run_dir / "transactions.parquet")
    assert published.height == sum(sizes) - 4
    assert published["source_file"].unique().sort().to_list() == [str(tmp_path / n) for n in names]


def test_a_file_that_cannot_be_read_is_named(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    tx, _ = data
    _split(tx, None, tmp_path, ["transactions-a.csv", "transactions-b.csv", "transactions-c.csv"])
    (tmp_path / "transactions-b.csv").write_text("txn_id,ts\n")
    with pytest.raises(InputError) as info:
        ingest.read(tmp_path)
    assert "transactions-b.csv" in str(info.value)


def test_two_layouts_at_once_are_refused(
    data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    tx, _ = data
    _write(tx, tmp_path / "transactions.parquet")
    _write(tx, tmp_path / "transactions" / "day-1.parquet")
    with pytest.raises(InputError, match="which are the transactions"):
        ingest.read(tmp_path)
