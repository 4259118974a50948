"""Whole files: format detection, errors about a file as a whole (missing, empty, wrong header, over
the reject budget), and what spreadsheets do to CSV files."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime

import pytest
from ingest_samples import (
    AMLSIM,
    AMLWORLD,
    AMLWORLD_HEADER,
    AMLWORLD_ROW,
    CANONICAL,
    PAYSIM,
    SAMLD,
    amlworld_file,
    frames,
)

from flows87.errors import ConfigError, InputError
from flows87.pipeline.ingest import FORMATS, detect_format, read
from flows87.pipeline.ingest.common import currency_names, units_per_usd


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
