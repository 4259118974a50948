"""Properties of the readers: valid rows come back as written; malformed input never crashes.

"Never crashes" means: `read` returns (each bad row in `rejects`, the lazy tables collect) or
raises InputError. Any other exception is a bug.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from flows87.errors import InputError
from flows87.pipeline.ingest import FORMATS, read
from flows87.pipeline.ingest.common import currency_names

SETTINGS = settings(max_examples=40, deadline=None)
CHEAP = settings(max_examples=150, deadline=None)  # these mostly stop at the header

AMLWORLD_HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,"
    "Amount Paid,Payment Currency,Payment Format,Is Laundering"
)
CURRENCIES = ["US Dollar", "Euro", "Yuan", "Yen", "UK Pound", "Swiss Franc", "Rupee", "Bitcoin"]
PAYMENT = {"Cheque": "cheque", "ACH": "ach", "Credit Card": "card", "Wire": "wire",
           "Cash": "cash_deposit", "Bitcoin": "crypto", "Reinvestment": "other"}  # fmt: skip
LABELS = {"0": False, "1": True, "True": True, "false": False, "TRUE": True, "0.0": False}

minutes = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
amounts = st.floats(min_value=0.01, max_value=1e12, allow_nan=False, allow_infinity=False)


@st.composite
def amlworld_rows(draw: st.DrawFn) -> dict:
    amount = draw(amounts)
    return {
        "ts": draw(minutes),
        "src_bank": draw(st.from_regex(r"[0-9]{1,6}", fullmatch=True)),
        "src": draw(st.from_regex(r"[0-9A-F]{9}", fullmatch=True)),
        "dst_bank": draw(st.from_regex(r"[0-9]{1,6}", fullmatch=True)),
        "dst": draw(st.from_regex(r"[0-9A-F]{9}", fullmatch=True)),
        "amount": draw(st.sampled_from([repr(amount), f"{amount:.9E}", f"{amount:.2f}"])),
        "currency": draw(st.sampled_from(CURRENCIES)),
        "format": draw(st.sampled_from(list(PAYMENT))),
        "label": draw(st.sampled_from(list(LABELS))),
    }


def amlworld_line(r: dict) -> str:
    return ",".join([r["ts"].strftime("%Y/%m/%d %H:%M"), r["src_bank"], r["src"], r["dst_bank"],
                     r["dst"], r["amount"], r["currency"], r["amount"], r["currency"],
                     r["format"], r["label"]])  # fmt: skip


def read_or_refuse(path: Path, format: str | None = None) -> None:
    """Read, and collect what was read; only an InputError may stop it."""
    try:
        result = read(path, format, max_reject_fraction=1.0)
    except InputError:
        return
    tx = result.transactions.collect()
    result.accounts.collect()
    assert tx["amount"].min() is None or tx["amount"].min() > 0
    assert not set(tx["source_row"]) & set(result.rejects["source_row"])


@SETTINGS
@given(
    rows=st.lists(amlworld_rows(), min_size=1, max_size=8), crlf=st.booleans(), bom=st.booleans()
)
def test_amlworld_rows_round_trip(rows, crlf, bom):
    eol = "\r\n" if crlf else "\n"
    text = eol.join([AMLWORLD_HEADER, *map(amlworld_line, rows)]) + eol
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "P_Trans.csv"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
        result = read(path)
        tx = result.transactions.collect().sort("source_row")
    assert result.rejects.height == 0
    assert tx.height == len(rows)
    names = currency_names()
    for got, want in zip(tx.iter_rows(named=True), rows, strict=True):
        assert got["ts"] == want["ts"].replace(tzinfo=UTC)
        assert got["src_account"] == f"{want['src_bank']}:{want['src']}"
        assert got["dst_account"] == f"{want['dst_bank']}:{want['dst']}"
        assert got["amount"] == float(want["amount"])
        assert got["currency"] == names[want["currency"].lower()]
        assert got["channel"] == PAYMENT[want["format"]]
        assert got["is_suspicious"] == LABELS[want["label"]]


words = st.text(alphabet="abcXYZ019 ,'\"-_:;", min_size=0, max_size=12)


@st.composite
def canonical_rows(draw: st.DrawFn) -> dict:
    key = words.filter(lambda w: w.strip() != "")
    return {
        "txn_id": draw(key),
        "ts": draw(st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1))).replace(tzinfo=UTC),
        "src_account": draw(key),
        "dst_account": draw(key),
        "amount": draw(amounts),
        "currency": draw(st.sampled_from(["USD", "EUR", "GBP", "XBT"])),
        "channel": draw(st.sampled_from(["wire", "p2p", "card", "cash_deposit"])),
        "memo": draw(words),
        "is_suspicious": draw(st.booleans()),
    }


@SETTINGS
@given(rows=st.lists(canonical_rows(), min_size=1, max_size=8))
def test_canonical_csv_round_trips(rows):
    frame = pl.DataFrame(rows)
    with tempfile.TemporaryDirectory() as tmp:
        frame.write_csv(Path(tmp) / "transactions.csv")
        result = read(tmp)
        tx = result.transactions.collect().sort("source_row")
    assert result.rejects.height == 0
    for column in ("txn_id", "src_account", "dst_account", "memo"):  # text is read stripped
        want = frame[column].str.strip_chars().replace("", None)
        assert tx[column].to_list() == want.to_list(), column
    for column in ("ts", "amount", "currency", "channel", "is_suspicious"):
        assert tx[column].to_list() == frame[column].to_list(), column


@CHEAP
@given(data=st.binary(max_size=600), format=st.sampled_from([None, *FORMATS]))
def test_random_bytes_never_crash(data, format):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.csv"
        path.write_bytes(data)
        read_or_refuse(path, format)


HEADERS = {
    "amlworld": AMLWORLD_HEADER,
    "paysim": "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,"
    "newbalanceDest,isFraud,isFlaggedFraud",
    "samld": "Time,Date,Sender_account,Receiver_account,Amount,Payment_currency,Received_currency,"
    "Sender_bank_location,Receiver_bank_location,Payment_type,Is_laundering,Laundering_type",
    "amlsim": "tran_id,orig_acct,bene_acct,tx_type,base_amt,tran_timestamp,is_sar,alert_id",
    "canonical": "txn_id,ts,src_account,dst_account,amount,currency,channel",
}


csv_like = st.text(alphabet='0123456789abcXYZ,,,"\n\r.-:/ Té', max_size=400).map(str.encode)


@CHEAP
@given(
    format=st.sampled_from(list(HEADERS)),
    body=st.one_of(st.binary(max_size=400), csv_like),
)
def test_random_bytes_after_a_header_never_crash(format, body):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        path.write_bytes(HEADERS[format].encode() + b"\n" + body)
        read_or_refuse(path)


cell = st.one_of(
    st.sampled_from(["", "0", "1", "true", "-1", "1e308", "nan", "2022/09/01 00:20",
                     "2022-10-07", "10:35:19", "2017-01-01T00:00:00Z", "US Dollar", "Euro",
                     "UK pounds", "UK", "Wire", "TRANSFER", "PAYMENT", "wire", "USD"]),
    st.text(alphabet="0123456789abcXYZ.-:/ Té", max_size=8),
)  # fmt: skip


@SETTINGS
@given(
    format=st.sampled_from(list(HEADERS)),
    rows=st.lists(st.lists(cell, min_size=12, max_size=12), min_size=1, max_size=5),
)
def test_random_cells_in_every_format_are_accounted_for(format, rows):
    header = HEADERS[format]
    width = header.count(",") + 1
    lines = [",".join(r[:width]) for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.csv"
        path.write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
        try:
            result = read(path, format, max_reject_fraction=1.0)
        except InputError as e:
            assert "no data rows" in e.reason
            return
        kept = set(result.transactions.collect()["source_row"])
        result.accounts.collect()
    rejected = set(result.rejects["source_row"])
    blank = {i + 1 for i, line in enumerate(lines) if not line.strip(",")}
    assert kept | rejected == set(range(1, len(lines) + 1)) - blank
    assert not kept & rejected


garbage = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)
plain_garbage = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                                               blacklist_characters=',"'), max_size=10)  # fmt: skip


@SETTINGS
@given(
    rows=st.lists(amlworld_rows(), min_size=1, max_size=6),
    cells=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10), plain_garbage), max_size=4),
)
def test_garbled_cells_are_rejected_row_by_row(rows, cells):
    lines = [amlworld_line(r).split(",") for r in rows]
    garbled = set()
    for row, column, text in cells:
        if row < len(lines) and lines[row][column] != text:
            lines[row][column] = text
            garbled.add(row + 1)
    body = "\n".join(",".join(fields) for fields in lines)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "G_Trans.csv"
        path.write_text(AMLWORLD_HEADER + "\n" + body + "\n", encoding="utf-8")
        try:
            result = read(path, "amlworld", max_reject_fraction=1.0)
        except InputError:
            return  # e.g. every row garbled into blanks: no data rows
        kept = set(result.transactions.collect()["source_row"])
    rejected = set(result.rejects["source_row"])
    assert rejected <= garbled
    assert kept | rejected == set(range(1, len(rows) + 1)) - blank_rows(lines)
    assert not kept & rejected


def blank_rows(lines: list[list[str]]) -> set[int]:
    """Rows garbled into empty cells only, which readers skip like Excel's empty rows."""
    return {i + 1 for i, fields in enumerate(lines) if not "".join(fields)}


@SETTINGS
@given(
    rows=st.lists(amlworld_rows(), min_size=1, max_size=6),
    cells=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 10), garbage), max_size=4),
)
def test_any_garbage_in_cells_never_crashes(rows, cells):
    lines = [amlworld_line(r).split(",") for r in rows]
    for row, column, text in cells:
        if row < len(lines):
            lines[row][column] = text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "G_Trans.csv"
        path.write_text(AMLWORLD_HEADER + "\n" + "\n".join(map(",".join, lines)), encoding="utf-8")
        read_or_refuse(path)


@SETTINGS
@given(rows=st.lists(amlworld_rows(), min_size=1, max_size=6), cut=st.floats(0, 1))
def test_truncated_files_never_crash(rows, cut):
    data = ("\n".join([AMLWORLD_HEADER, *map(amlworld_line, rows)]) + "\n").encode()
    data = "é".encode().join([data[:10], data[10:]])  # a two-byte character to cut through
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "T_Trans.csv"
        path.write_bytes(data[: int(len(data) * cut)])
        read_or_refuse(path)
