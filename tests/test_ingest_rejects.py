"""Bad rows in each format: rejected with the reason and the source record, counted against the
reject budget, never silently dropped or guessed."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from ingest_samples import AMLWORLD_ROW, CANONICAL, FIXTURES, amlworld_file, frames

from flows87.errors import InputError
from flows87.pipeline.ingest import read
from flows87.pipeline.ingest.common import REJECT_SCHEMA

BAD_ROWS = {
    FIXTURES / "amlworld" / "Bad-Rows_Trans.csv": (
        [1, 11],
        [
            (2, "Amount Paid", "not a number"),
            (3, "Timestamp", "not a date in format %Y/%m/%d %H:%M"),
            (4, "Account", "empty value"),
            (5, "Amount Paid", "amount must be > 0"),
            (6, "Amount Paid", "not a number (NaN)"),
            (7, "Amount Paid", "amount must be finite"),
            (8, "Timestamp", "not a date in format %Y/%m/%d %H:%M"),
            (9, "Payment Currency", "unknown currency"),
            (10, "Amount Paid", "amount must be > 0"),
            (10, "Is Laundering", "not a boolean (expected 0/1 or true/false)"),
        ],
    ),
    FIXTURES / "paysim" / "bad_rows.csv": (
        [1, 8],
        [
            (2, "step", "not a whole number"),
            (3, "step", "must be >= 0"),
            (4, "step", "not a whole number"),
            (5, "amount", "amount must be > 0"),
            (6, "nameOrig", "empty value"),
            (7, "isFraud", "not a boolean (expected 0/1 or true/false)"),
        ],
    ),
    FIXTURES / "samld" / "bad_rows.csv": (
        [1, 6],  # an unknown location only loses the country
        [
            (2, "Time", "not a time in format %H:%M:%S"),
            (3, "Date", "not a date in format %Y-%m-%d"),
            (4, "Amount", "not a number"),
            (5, "Payment_currency", "unknown currency"),
        ],
    ),
    FIXTURES / "amlsim" / "bad": (
        [1, 6],
        [
            (2, "base_amt", "empty value"),
            (3, "tran_timestamp", "not an ISO 8601 date-time (2022-09-01T00:20:00Z)"),
            (4, "tran_id", "empty value"),
            (5, "is_sar", "not a boolean (expected 0/1 or true/false)"),
        ],
    ),
    FIXTURES / "canonical" / "bad": (
        [1, 7],
        [
            (2, "ts", "not an ISO 8601 date-time (2022-09-01T00:20:00Z)"),
            (3, "dst_account", "empty value"),
            (4, "currency", "not an ISO 4217 code"),
            (5, "channel", "unknown channel"),
            (6, "currency", "no FX rate for this currency (amount_base cannot be computed)"),
        ],
    ),
}


@pytest.mark.parametrize("path", list(BAD_ROWS), ids=lambda p: p.parent.name)
def test_bad_rows_are_rejected_and_good_rows_kept(path):
    good, expected = BAD_ROWS[path]
    result = read(path, max_reject_fraction=1.0)
    tx, _ = frames(result)
    assert sorted(tx["source_row"]) == good
    rejects = result.rejects.filter(pl.col("table") == "transactions")
    assert (
        list(zip(rejects["source_row"], rejects["column"], rejects["reason"], strict=True))
        == expected
    )
    assert set(rejects["source_file"]) == {
        str(path if path.is_file() else path / "transactions.csv")
    }


@pytest.mark.parametrize("path", list(BAD_ROWS), ids=lambda p: p.parent.name)
def test_too_many_bad_rows_name_the_first(path):
    _, expected = BAD_ROWS[path]
    row, column, reason = expected[0]
    with pytest.raises(InputError) as info:
        read(path)
    error = info.value
    assert (error.row, error.column) == (row, column)
    assert reason in error.reason
    n_bad = len({r for r, _, _ in expected})
    assert f"{n_bad:,} of " in error.reason


def test_rejects_show_the_raw_text():
    rejects = read(FIXTURES / "amlworld" / "Bad-Rows_Trans.csv", max_reject_fraction=1).rejects
    values = dict(zip(rejects["source_row"], rejects["value"], strict=False))
    assert values[2] == "abc"
    assert values[8] == "99999/01/01 00:00"
    assert values[4] == ""


def test_amlsim_account_rejects_are_their_own_table():
    rejects = read(FIXTURES / "amlsim" / "bad", max_reject_fraction=1).rejects
    accounts = rejects.filter(pl.col("table") == "accounts")
    assert list(zip(accounts["source_row"], accounts["column"], strict=True)) == [
        (2, "acct_id"),
        (3, "open_dt"),
    ]


def test_reject_fraction_is_a_share_of_the_rows(tmp_path):
    rows = [AMLWORLD_ROW.format(amount=i + 1) for i in range(20)]
    rows[7] = AMLWORLD_ROW.format(amount="x")
    one_bad = amlworld_file(tmp_path, rows, "one_Trans.csv")
    assert read(one_bad).rejects["source_row"].to_list() == [8]  # 1 of 20 = 5 % is allowed
    rows[9] = AMLWORLD_ROW.format(amount="y")
    two_bad = amlworld_file(tmp_path, rows, "two_Trans.csv")
    with pytest.raises(InputError, match="2 of 20 rows"):
        read(two_bad)
    assert read(two_bad, max_reject_fraction=0.1).rejects.height == 2


PAYSIM_HEADER = (
    "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,"
    "newbalanceDest,isFraud,isFlaggedFraud"
)


def paysim_with_zero_fraud(path: Path, n: int = 100, zero_rows: tuple[int, ...] = (10, 40, 70)):
    """A PaySim-shaped file of `n` rows; the rows `zero_rows` (1-based) are fraud-labelled
    transfers of amount 0.00, as a real PaySim copy has. Returns the path and its lines."""
    lines = [PAYSIM_HEADER]
    for row in range(1, n + 1):
        zero = row in zero_rows
        amount = "0.00" if zero else f"{100 + row}.50"
        kind = "TRANSFER" if zero else ("PAYMENT" if row % 2 else "CASH_OUT")
        dest = f"M{row % 17}" if kind == "PAYMENT" else f"C9{row % 23}"
        lines.append(
            f"{1 + row // 10},{kind},{amount},C{row % 31},{row}.0,0.0,{dest},0.0,"
            f"{row}.0,{int(zero)},0"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, lines


def test_paysim_rejects_keep_the_whole_record_with_the_label(tmp_path):
    """Three fraud-labelled rows of amount 0.00: each reject keeps every raw field, isFraud too."""
    path, lines = paysim_with_zero_fraud(tmp_path / "PS_log.csv")
    result = read(path)
    assert result.rejects.schema == REJECT_SCHEMA
    rejects = result.rejects
    assert rejects["source_row"].to_list() == [10, 40, 70]
    assert set(rejects["reason"]) == {"amount must be > 0"}
    header = PAYSIM_HEADER.split(",")
    for row, record in zip(rejects["source_row"], rejects["record"], strict=True):
        fields = json.loads(record)
        assert list(fields) == header  # every column, in the file's order
        assert list(fields.values()) == lines[row].split(",")  # the file's text
        assert fields["isFraud"] == "1" and fields["amount"] == "0.00"
    tx = result.transactions.collect()
    assert tx.height == 97 and not set(tx["source_row"]) & {10, 40, 70}


def test_every_reject_of_a_row_carries_its_record():
    rejects = read(FIXTURES / "amlworld" / "Bad-Rows_Trans.csv", max_reject_fraction=1).rejects
    ten = rejects.filter(pl.col("source_row") == 10)
    assert ten["column"].to_list() == ["Amount Paid", "Is Laundering"]
    assert ten["record"].n_unique() == 1
    record = json.loads(ten["record"][0])
    assert list(record)[:5] == ["Timestamp", "From Bank", "Account", "To Bank", "Account.1"]
    assert record["Is Laundering"] == ten.filter(pl.col("column") == "Is Laundering")["value"][0]
    assert rejects["record"].null_count() == 0
    empty = json.loads(rejects.filter(pl.col("source_row") == 4)["record"][0])
    assert empty["Account"] == ""  # an empty CSV field is its text, ""


def test_canonical_csv_reject_keeps_labels_and_unknown_columns(tmp_path):
    text = (CANONICAL / "transactions.csv").read_text(encoding="utf-8").splitlines()
    header = text[0] + ",branch_note"
    rows = [line + ",x" for line in text[1:]]
    rows.append("t5,2026-01-08T10:00:00Z,A1,A3,12;50,USD,,p2p,,,,,,,true,ht_hotel_pattern,s-2,late")
    (tmp_path / "transactions.csv").write_text("\n".join([header, *rows]) + "\n")
    rejects = read(tmp_path, max_reject_fraction=0.5).rejects
    assert rejects.select("source_row", "column", "reason").rows() == [
        (5, "amount", "not a number"),
        (5, "amount_base", "empty value"),
    ]
    record = json.loads(rejects["record"][0])
    assert list(record) == header.split(",")
    assert record["amount"] == "12;50" and record["amount_base"] == ""
    assert (record["is_suspicious"], record["typology"], record["scheme_id"]) == (
        "true",
        "ht_hotel_pattern",
        "s-2",
    )
    assert record["branch_note"] == "late"


def test_canonical_parquet_reject_keeps_every_column(tmp_path):
    tx = read(CANONICAL).transactions.collect().drop("source_row")
    bad = tx.head(1).with_columns(txn_id=pl.lit("t9"), amount=pl.lit(-3.0))
    pl.concat([tx, bad]).with_columns(note=pl.lit("kept")).write_parquet(
        tmp_path / "transactions.parquet"
    )
    result = read(tmp_path, max_reject_fraction=0.5)
    rejects = result.rejects
    assert rejects.select("source_row", "column", "value").rows() == [(5, "amount", "-3.0")]
    record = json.loads(rejects["record"][0])
    assert list(record) == [*tx.columns, "note"]
    assert (record["txn_id"], record["amount"], record["note"]) == ("t9", "-3.0", "kept")
    assert record["is_suspicious"] == "false" and record["mcc"] is None  # Parquet null: null
    assert "note" not in result.transactions.collect().columns
