"""The case CSV export against hostile text: every string column is escaped against formula
injection, and control characters never reach the file (nor make the export fail)."""

from __future__ import annotations

import csv
import io

import pytest
from postgres import make_run
from sqlalchemy import update

from flows87.investigate.export import transactions_csv
from flows87.investigate.store import Store, load_run
from flows87.investigate.store.models import CaseTransaction

# a value per text column, each one a formula or a control character a spreadsheet would act on
HOSTILE = {
    "txn_id": "=1+1",
    "src_account": "+SUM(A1:A9)",
    "dst_account": "-2+3",
    "currency": "@SUM(1)",
    "channel": "\t=cmd|' /C calc'!A0",
    "mcc": "\r=1",
    "src_country": '=HYPERLINK("http://evil")',
    "dst_country": "\x00=2",
    "location_id": "loc\x1b[31mred\x07",
    "device_id": "dev\x00ice",
    "memo": "line one\nline two\x0c",
}


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "cases.db")
    s.upgrade()
    with s.session() as session:
        load_run(session, make_run(tmp_path / "run"), "2026-01-01")
        session.execute(
            update(CaseTransaction)
            .where(CaseTransaction.case_id == "C-aaa", CaseTransaction.txn_id == "T000")
            .values(**HOSTILE)
        )
    yield s
    s.dispose()


def test_every_string_column_is_escaped_against_formulas(store):
    with store.session() as s:
        text = transactions_csv(s, "C-aaa")
    rows = list(csv.DictReader(io.StringIO(text)))
    row = next(r for r in rows if r["txn_id"].endswith("=1+1"))
    assert row["txn_id"] == "'=1+1"
    assert row["src_account"] == "'+SUM(A1:A9)"
    assert row["dst_account"] == "'-2+3"
    assert row["currency"] == "'@SUM(1)"
    assert row["channel"] == "'\t=cmd|' /C calc'!A0"
    assert row["mcc"] == "'\r=1"
    assert row["src_country"] == '\'=HYPERLINK("http://evil")'
    # a NUL in front does not hide a formula: removed, then the formula is escaped
    assert row["dst_country"] == "'=2"
    # no cell of the file starts a formula
    for r in rows:
        for value in r.values():
            assert not value or value[0] not in "=+-@\t\r", (r, value)


def test_control_characters_are_removed_and_line_breaks_kept(store):
    with store.session() as s:
        text = transactions_csv(s, "C-aaa")
    assert not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text)
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["txn_id"] == "'=1+1")
    assert row["location_id"] == "loc[31mred"
    assert row["device_id"] == "device"
    assert row["memo"] == "line one\nline two"
    # the other transactions are as they were
    assert {r["txn_id"] for r in csv.DictReader(io.StringIO(text))} >= {"T001", "T004"}
