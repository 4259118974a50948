"""The readers on small files in each public format: mapping, labels, rejects, file errors."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flows87 import schema
from flows87.errors import ConfigError, InputError
from flows87.pipeline.ingest import FORMATS, ReadResult, detect_format, read
from flows87.pipeline.ingest.common import REJECT_SCHEMA, currency_names, units_per_usd

FIXTURES = Path(__file__).parent / "fixtures"
AMLWORLD = FIXTURES / "amlworld" / "HI-Tiny_Trans.csv"
PAYSIM = FIXTURES / "paysim" / "paysim.csv"
SAMLD = FIXTURES / "samld" / "SAML-D.csv"
AMLSIM = FIXTURES / "amlsim" / "sim"
CANONICAL = FIXTURES / "canonical" / "csv"

AMLWORLD_HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,"
    "Amount Paid,Payment Currency,Payment Format,Is Laundering"
)
AMLWORLD_ROW = (
    "2022/09/01 00:20,010,8000EBD30,020,8000EBD31,{amount},US Dollar,{amount},US Dollar,Wire,0"
)


def frames(result: ReadResult) -> tuple[pl.DataFrame, pl.DataFrame]:
    return result.transactions.collect(), result.accounts.collect()


def by_row(tx: pl.DataFrame, row: int) -> dict:
    return tx.filter(pl.col("source_row") == row).row(0, named=True)


def usd(amount: float, code: str) -> float:
    return amount / units_per_usd()[code]


def amlworld_file(tmp_path: Path, rows: list[str], name: str = "X_Trans.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([AMLWORLD_HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_every_format_has_a_reader_and_canonical_output():
    for path in (AMLWORLD, PAYSIM, SAMLD, AMLSIM, CANONICAL):
        result = read(path)
        assert result.format in FORMATS
        tx, accounts = frames(result)
        assert tx.schema == schema.schema("transactions")
        assert accounts.schema == schema.schema("accounts")
        assert result.rejects.schema == REJECT_SCHEMA
        assert tx["source_row"].min() == 1


# ---------------------------------------------------------------- AMLworld


def test_amlworld_maps_columns_and_keeps_zero_padded_banks():
    tx, _ = frames(read(AMLWORLD))
    assert tx.height == 12
    first = by_row(tx, 1)
    assert first["txn_id"] == "HI-Tiny_Trans:1"
    assert first["ts"] == datetime(2022, 9, 1, 0, 20, tzinfo=UTC)
    assert first["src_account"] == "010:8000EBD30"
    assert by_row(tx, 3)["src_account"] == "021174:800737690"
    assert by_row(tx, 4)["dst_account"] == "001120:8006AA910"
    yuan = by_row(tx, 4)
    assert (yuan["amount"], yuan["currency"]) == (10138095.61, "CNY")
    assert yuan["amount_base"] == pytest.approx(usd(10138095.61, "CNY"))
    assert by_row(tx, 8)["amount"] == 1.33e7
    assert by_row(tx, 9)["currency"] == "XBT"
    channels = dict(zip(tx["source_row"], tx["channel"], strict=True))
    assert channels[1] == "other"  # Reinvestment
    assert channels[2] == "cheque"
    assert channels[8] == "wire"
    assert channels[9] == "crypto"
    assert channels[10] == "cash_deposit"
    assert channels[11] == "card"


def test_amlworld_patterns_give_typology_and_scheme():
    result = read(AMLWORLD)
    assert result.sources == [AMLWORLD, AMLWORLD.with_name("HI-Tiny_Patterns.txt")]
    tx, _ = frames(result)
    fan_out = tx.filter(pl.col("source_row").is_in([3, 4, 5]))
    cycle = tx.filter(pl.col("source_row").is_in([6, 7]))
    assert set(fan_out["typology"]) == {"fan_out"}
    assert set(cycle["typology"]) == {"cycle"}
    assert fan_out["scheme_id"].n_unique() == 1 and cycle["scheme_id"].n_unique() == 1
    assert fan_out["scheme_id"][0] != cycle["scheme_id"][0]
    unlisted = by_row(tx, 12)  # laundering, but in no attempt of the patterns file
    assert (unlisted["is_suspicious"], unlisted["typology"], unlisted["scheme_id"]) == (
        True,
        "laundering",
        None,
    )
    clean = tx.filter(~pl.col("is_suspicious"))
    assert clean.height == 6
    assert clean["typology"].null_count() == clean.height


def test_amlworld_without_patterns_file_labels_laundering(tmp_path):
    path = tmp_path / "HI-Tiny_Trans.csv"
    shutil.copy(AMLWORLD, path)
    result = read(path)
    tx, _ = frames(result)
    assert result.sources == [path]
    suspicious = tx.filter(pl.col("is_suspicious"))
    assert suspicious.height == 6
    assert set(suspicious["typology"]) == {"laundering"}
    assert suspicious["scheme_id"].null_count() == 6


def test_amlworld_accounts_are_derived_from_both_sides():
    tx, accounts = frames(read(AMLWORLD))
    seen = set(tx["src_account"]) | set(tx["dst_account"])
    assert set(accounts["account_id"]) == seen
    assert accounts["account_id"].is_unique().all()
    assert set(accounts["kind"]) == {"unknown"}
    banks = accounts.select(pl.col("account_id").str.split(":").list.first() == pl.col("bank_id"))
    assert banks.to_series().all()
    suspicious = set(tx.filter("is_suspicious")["src_account"]) | set(
        tx.filter("is_suspicious")["dst_account"]
    )
    assert set(accounts.filter("is_suspicious")["account_id"]) == suspicious
    hub = accounts.filter(pl.col("account_id") == "021174:800737690").row(0, named=True)
    assert hub["typology"] == "fan_out"


def test_unlabelled_amlworld_has_no_label_columns(tmp_path):
    path = tmp_path / "U_Trans.csv"
    header = AMLWORLD_HEADER.removesuffix(",Is Laundering")
    path.write_text(header + "\n" + AMLWORLD_ROW.format(amount=5).removesuffix(",0") + "\n")
    tx, accounts = frames(read(path))
    assert tx.height == 1
    for frame in (tx, accounts):
        assert not set(schema.label_columns("transactions")) & set(frame.columns)


def test_base_currency_converts_amount_base():
    tx, _ = frames(read(AMLWORLD, base_currency="EUR"))
    row = by_row(tx, 1)  # 3697.34 US dollars
    assert row["amount_base"] == pytest.approx(3697.34 * units_per_usd()["EUR"])
    assert row["amount"] == 3697.34


# ---------------------------------------------------------------- PaySim


def test_paysim_steps_are_hours_after_start():
    tx, _ = frames(read(PAYSIM))
    assert by_row(tx, 1)["ts"] == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert by_row(tx, 8)["ts"] == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=743)
    start = datetime(2020, 6, 1, 12)
    moved, _ = frames(read(PAYSIM, start=start))
    assert by_row(moved, 5)["ts"] == datetime(2020, 6, 1, 14, tzinfo=UTC)


def test_paysim_maps_types_labels_and_merchants():
    tx, accounts = frames(read(PAYSIM))
    channels = dict(zip(tx["source_row"], tx["channel"], strict=True))
    assert [channels[r] for r in (1, 3, 4, 5, 6)] == [
        "mobile_money",
        "p2p",
        "cash_withdrawal",
        "mobile_money",
        "cash_deposit",
    ]
    assert set(tx["currency"]) == {"USD"}
    assert by_row(tx, 7)["amount"] == 1.0e7
    fraud = tx.filter("is_suspicious")
    assert sorted(fraud["source_row"]) == [3, 4, 7, 8]
    assert set(fraud["typology"]) == {"fraud"}
    assert tx.filter(~pl.col("is_suspicious"))["typology"].null_count() == 4
    kinds = dict(zip(accounts["account_id"], accounts["kind"], strict=True))
    assert kinds["M1979787155"] == "business"
    assert kinds["C1231006815"] == "individual"
    assert accounts.filter(pl.col("account_id") == "C553264065")["is_suspicious"].item()


# ---------------------------------------------------------------- SAML-D


def test_samld_maps_time_currency_location_and_typology():
    tx, accounts = frames(read(SAMLD))
    first = by_row(tx, 1)
    assert first["ts"] == datetime(2022, 10, 7, 10, 35, 19, tzinfo=UTC)
    assert (first["currency"], first["channel"]) == ("GBP", "cash_deposit")
    assert (first["src_account"], first["dst_account"]) == ("8724731955", "2769355426")
    cross = by_row(tx, 2)
    assert (cross["src_country"], cross["dst_country"], cross["channel"]) == ("GB", "AE", "wire")
    assert by_row(tx, 4)["currency"] == "INR"
    assert by_row(tx, 6)["amount"] == 12000.0
    assert by_row(tx, 7)["currency"] == "MAD"
    typologies = dict(zip(tx["source_row"], tx["typology"], strict=True))
    assert [typologies[r] for r in (1, 2, 3)] == [None, None, None]  # normal behaviour
    assert typologies[4] == "smurfing"
    assert typologies[6] == "stacked_bipartite"
    assert typologies[7] == "layered_fan_out"
    countries = dict(zip(accounts["account_id"], accounts["country"], strict=True))
    assert countries["1111111111"] == "ES"
    assert countries["2222222222"] in ("NG", "MA")


# ---------------------------------------------------------------- AMLSim


def test_amlsim_folder_reads_labels_from_alerts():
    result = read(AMLSIM)
    assert result.format == "amlsim"
    assert {p.name for p in result.sources} == {
        "transactions.csv",
        "accounts.csv",
        "alert_transactions.csv",
        "alert_accounts.csv",
    }
    tx, _ = frames(result)
    assert by_row(tx, 1)["ts"] == datetime(2017, 1, 1, 10, tzinfo=UTC)
    assert by_row(tx, 4)["channel"] == "cash_deposit"
    assert by_row(tx, 7)["channel"] == "cheque"
    sar = tx.filter("is_suspicious").sort("source_row")
    assert sar["txn_id"].to_list() == ["2", "3", "5", "6"]
    assert sar["typology"].to_list() == ["cycle", "cycle", "fan_out", "fan_out"]
    assert sar["scheme_id"].to_list() == ["10", "10", "11", "11"]
    false_alert = by_row(tx, 7)  # alert 12 is not a SAR
    assert (false_alert["is_suspicious"], false_alert["typology"]) == (False, None)


def test_amlsim_accounts_table_is_mapped():
    _, accounts = frames(read(AMLSIM))
    assert accounts.height == 6
    acme = accounts.filter(pl.col("account_id") == "3001").row(0, named=True)
    assert (acme["kind"], acme["party_id"], acme["bank_id"]) == ("business", "C_3001", "bank_b")
    mary = accounts.filter(pl.col("account_id") == "1001").row(0, named=True)
    assert mary["birth_date"] == date(1980, 5, 17)
    assert mary["name"] == "Mary Jones"
    assert mary["opened_at"] == datetime(2017, 1, 1, tzinfo=UTC)
    assert not mary["is_suspicious"]
    labels = dict(zip(accounts["account_id"], accounts["typology"], strict=True))
    assert labels["4001"] == "fan_out" and labels["2001"] == "cycle"


def test_amlsim_transactions_file_alone_derives_accounts(tmp_path):
    shutil.copy(AMLSIM / "transactions.csv", tmp_path / "transactions.csv")
    result = read(tmp_path / "transactions.csv")
    assert result.format == "amlsim"
    tx, accounts = frames(result)
    assert set(accounts["account_id"]) == set(tx["src_account"]) | set(tx["dst_account"])
    assert set(tx.filter("is_suspicious")["typology"]) == {"laundering"}


# ---------------------------------------------------------------- canonical


def test_canonical_csv_folder_round_trips_through_parquet(tmp_path):
    tx, accounts = frames(read(CANONICAL))
    assert by_row(tx, 2)["ts"] == datetime(2026, 1, 5, 23, 40, 0, 250000, tzinfo=UTC)
    assert by_row(tx, 2)["memo"] == "hotel, 2 nights"
    assert by_row(tx, 4)["ts"] == datetime(2026, 1, 7, tzinfo=UTC)
    assert by_row(tx, 2)["mcc"] == "7011"
    kinds = dict(zip(accounts["account_id"], accounts["kind"], strict=True))
    assert kinds["A3"] == "unknown"  # empty in the file
    assert accounts.filter(pl.col("account_id") == "A1")["bank_id"].item() == "0012"
    tx.write_parquet(tmp_path / "transactions.parquet")
    accounts.write_parquet(tmp_path / "accounts.parquet")
    again = read(tmp_path)
    assert again.format == "canonical"
    assert_frame_equal(again.transactions.collect(), tx)
    assert_frame_equal(again.accounts.collect(), accounts)


def test_canonical_parquet_of_other_types_is_converted(tmp_path):
    pl.DataFrame(
        {
            "txn_id": [1, 2],
            "ts": [datetime(2022, 1, 1, 3), datetime(2022, 1, 2)],  # naive: taken as UTC
            "src_account": ["a", "b"],
            "dst_account": ["b", "a"],
            "amount": [10, 20],  # integers
            "currency": ["EUR", "usd"],
            "channel": ["wire", "card"],
            "is_suspicious": [1, 0],
        }
    ).write_parquet(tmp_path / "transactions.parquet")
    tx, accounts = frames(read(tmp_path))
    assert tx["txn_id"].to_list() == ["1", "2"]
    assert tx["ts"][0] == datetime(2022, 1, 1, 3, tzinfo=UTC)
    assert tx["currency"].to_list() == ["EUR", "USD"]
    assert tx["amount_base"][0] == pytest.approx(usd(10, "EUR"))
    assert tx["is_suspicious"].to_list() == [True, False]
    assert set(accounts["account_id"]) == {"a", "b"}


# ---------------------------------------------------------------- bad rows

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


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (AMLWORLD, "amlworld"),
        (PAYSIM, "paysim"),
        (SAMLD, "samld"),
        (AMLSIM, "amlsim"),
        (AMLSIM / "transactions.csv", "amlsim"),
        (CANONICAL, "canonical"),
        (CANONICAL / "transactions.csv", "canonical"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_detect_format(path, expected):
    assert detect_format(path) == expected


def test_detect_parquet_folder(tmp_path):
    read(CANONICAL).transactions.collect().write_parquet(tmp_path / "transactions.parquet")
    assert detect_format(tmp_path) == "canonical"
    assert detect_format(tmp_path / "transactions.parquet") == "canonical"


def test_unknown_header_names_file_header_and_formats(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("date,payer,payee,value\n2022-01-01,a,b,3\n")
    with pytest.raises(InputError) as info:
        detect_format(path)
    message = info.value.message
    assert str(path) in message and "date,payer,payee,value" in message
    for fmt in FORMATS:
        assert fmt in message
    with pytest.raises(InputError, match="unknown format"):
        read(path)


def test_patterns_file_is_not_a_transactions_file():
    with pytest.raises(InputError) as info:
        read(AMLWORLD.with_name("HI-Tiny_Patterns.txt"))
    assert "patterns file" in (info.value.hint or "")


def test_folder_without_transactions(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no transactions\.parquet or transactions\.csv"):
        read(tmp_path)


def test_explicit_format_with_wrong_header_lists_columns():
    with pytest.raises(InputError) as info:
        read(PAYSIM, format="samld")
    reason = info.value.reason
    assert "samld" in reason
    assert "missing columns ['Time', 'Date'" in reason
    assert "unexpected columns ['step', 'type'" in reason


def test_explicit_format_overrides_detection():
    assert read(PAYSIM, format="paysim").format == "paysim"


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="unknown format"):
        read(PAYSIM, format="csv")
    with pytest.raises(ConfigError, match="base currency"):
        read(PAYSIM, base_currency="DOGE")
    with pytest.raises(ConfigError, match="max_reject_fraction"):
        read(PAYSIM, max_reject_fraction=2)


# ---------------------------------------------------------------- whole-file errors


def test_file_not_found(tmp_path):
    with pytest.raises(InputError, match="file not found") as info:
        read(tmp_path / "missing.csv")
    assert info.value.file == str(tmp_path / "missing.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="0 bytes"):
        read(path, format="amlworld")
    with pytest.raises(InputError, match="0 bytes"):
        detect_format(path)


@pytest.mark.parametrize("ending", ["", "\n", "\r\n", "\n\n\n"])
def test_header_only_has_no_data_rows(tmp_path, ending):
    path = tmp_path / "head_Trans.csv"
    path.write_text(AMLWORLD_HEADER + ending)
    with pytest.raises(InputError, match="no data rows"):
        read(path)


def test_not_utf8_names_row_and_offset(tmp_path):
    path = tmp_path / "latin_Trans.csv"
    good = AMLWORLD_ROW.format(amount=5)
    path.write_bytes(
        (AMLWORLD_HEADER + "\n" + good + "\n").encode() + b"2022/09/01 00:20,010,Z\xe9\n"
    )
    with pytest.raises(InputError) as info:
        read(path)
    error = info.value
    assert error.row == 2
    offset = len(AMLWORLD_HEADER) + len(good) + 2 + len("2022/09/01 00:20,010,Z")
    assert f"byte offset {offset}" in error.reason


def test_utf16_file(tmp_path):
    path = tmp_path / "u16_Trans.csv"
    path.write_text(
        AMLWORLD_HEADER + "\n" + AMLWORLD_ROW.format(amount=5) + "\n", encoding="utf-16"
    )
    with pytest.raises(InputError, match="UTF-16"):
        read(path)


def test_compressed_download_is_named(tmp_path):
    path = tmp_path / "HI-Small_Trans.csv"
    path.write_bytes(gzip.compress(AMLWORLD_HEADER.encode()))
    with pytest.raises(InputError, match="gzip"):
        read(path, format="amlworld")


def test_folder_given_for_a_single_file_format(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read(tmp_path, format="paysim")


def test_truncated_last_line_is_named(tmp_path):
    path = tmp_path / "cut_Trans.csv"
    rows = [AMLWORLD_ROW.format(amount=i + 1) for i in range(3)]
    path.write_text(AMLWORLD_HEADER + "\n" + "\n".join(rows) + "\n2022/09/01 00:21,010,80")
    with pytest.raises(InputError) as info:
        read(path)
    assert info.value.row == 4
    assert "3 fields but the header has 11" in info.value.reason


def test_ragged_rows_are_named_and_counted(tmp_path):
    rows = [AMLWORLD_ROW.format(amount=i + 1) for i in range(5)]
    rows[1] += ",extra"
    rows[3] += ",more"
    with pytest.raises(InputError) as info:
        read(amlworld_file(tmp_path, rows))
    assert info.value.row == 2
    assert "12 fields" in info.value.reason and "1 more rows" in info.value.reason


# ---------------------------------------------------------------- what spreadsheets do


def test_excel_and_pandas_exports_read(tmp_path):
    header = (
        ",Timestamp,From Bank,Account,To Bank,Account.1,Amount Received,Receiving Currency,"
        "Amount Paid,Payment Currency,Payment Format,Is Laundering"
    )
    rows = [
        "0,2022/09/01 00:20,0012,8000EBD30,001,8000EBD31,1.33E+07,Euro,1.33E+07,Euro,Wire,True",
        '1,2022/09/01 00:21,0012,8000EBD30,001,8000EBD31,"1.013809561E7",Euro,'
        "1.013809561E7,Euro,ACH,false",
        "2,2022/09/01 00:22,0012,8000EBD30,001,8000EBD31,7,Euro,7,Euro,ACH,1",
        ",,,,,,,,,,,",
    ]
    path = tmp_path / "excel_Trans.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([header, *rows, ""]).encode())
    result = read(path)
    assert result.format == "amlworld"
    tx, _ = frames(result)
    assert tx["amount"].to_list() == [1.33e7, 10138095.61, 7.0]
    assert tx["is_suspicious"].to_list() == [True, False, True]
    assert tx["src_account"].to_list() == ["0012:8000EBD30"] * 3
    assert tx["dst_account"].to_list() == ["001:8000EBD31"] * 3
    assert result.rejects.height == 0


def test_rows_out_of_time_order_and_duplicates_are_kept(tmp_path):
    late = "2022/09/05 00:00,010,A,020,B,5,US Dollar,5,US Dollar,Wire,0"
    early = "2022/09/01 00:00,010,A,020,B,5,US Dollar,5,US Dollar,Wire,0"
    tx, _ = frames(read(amlworld_file(tmp_path, [late, early, early])))
    assert tx.sort("source_row")["ts"].to_list() == [
        datetime(2022, 9, 5, tzinfo=UTC),
        datetime(2022, 9, 1, tzinfo=UTC),
        datetime(2022, 9, 1, tzinfo=UTC),
    ]


def test_currency_names_cover_the_public_vocabularies():
    names = currency_names()
    amlworld = ["US Dollar", "Euro", "Yuan", "Yen", "UK Pound", "Swiss Franc", "Canadian Dollar",
                "Australian Dollar", "Rupee", "Ruble", "Mexican Peso", "Brazil Real", "Shekel",
                "Saudi Riyal", "Bitcoin"]  # fmt: skip
    samld = ["UK pounds", "Albanian lek", "Dirham", "Euro", "Indian rupee", "Mexican Peso",
             "Moroccan dirham", "Naira", "Pakistani rupee", "Swiss franc", "Turkish lira",
             "US dollar", "Yen"]  # fmt: skip
    for name in amlworld + samld:
        assert names[name.lower()] in units_per_usd(), name
    assert names["bitcoin"] == "XBT"
