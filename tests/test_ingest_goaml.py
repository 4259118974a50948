"""The goAML reader: hand-written reports in the 5.0.1 XSD's structure (tests/fixtures/goaml/),
a report failing the XSD, a malformed file, a zip, a transaction reported by two banks, the
round trip with flows87's own exporter, and the field parsers (hypothesis)."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_export import XSD, needs_xsd, settings_file, store  # noqa: F401 (fixtures)

from flows87.cli import EXIT_OK, main
from flows87.errors import InputError
from flows87.pipeline.ingest import detect_format, read
from flows87.pipeline.ingest.common import Options
from flows87.pipeline.ingest.goaml import GoamlResult
from flows87.pipeline.ingest.goaml import read as read_goaml
from flows87.pipeline.ingest.goaml_fields import parse_amount, parse_datetime

FIXTURES = Path(__file__).parent / "fixtures" / "goaml"
REPORTS = FIXTURES / "reports"
INVALID = FIXTURES / "bad" / "bank_d_str_0009_invalid.xml"
TRUNCATED = FIXTURES / "bad" / "bank_e_ctr_0003_truncated.xml"


@pytest.fixture(autouse=True)
def no_goaml_env(monkeypatch):
    monkeypatch.delenv("FLOWS87_GOAML_XSD", raising=False)
    monkeypatch.delenv("FLOWS87_GOAML_CODES", raising=False)


def goaml(path: Path, xsd: Path | None = None, fraction: float = 0.05) -> GoamlResult:
    return read_goaml(path, Options(max_reject_fraction=fraction), xsd=xsd)


def with_bad(tmp_path: Path, *bad: Path) -> Path:
    folder = tmp_path / "intake"
    shutil.copytree(REPORTS, folder)
    for file in bad:
        shutil.copy(file, folder / file.name)
    return folder


@needs_xsd
def test_the_fixtures_are_in_the_xsd_structure():
    from flows87.investigate.export import validate_report

    for file in sorted(REPORTS.glob("*.xml")):
        assert validate_report(file.read_bytes(), XSD) == [], file.name
    assert validate_report(INVALID.read_bytes(), XSD)


def test_a_folder_of_reports_onto_the_canonical_tables():
    result = goaml(REPORTS)
    tx = result.transactions.collect().sort("ts")
    assert result.format == "goaml" and result.rejects.is_empty()
    # A-1 (bank A) and B-7 (bank B) are one transfer: counted once, both reports kept
    assert tx["txn_id"].to_list() == ["A-2", "A-1", "B-8"]
    named = result.reports.filter(pl.col("txn_id") == "A-1")
    assert sorted(named["source_file"]) == ["bank_a_str_0001.xml", "bank_b_ctr_0042.xml"]
    assert sorted(named["transactionnumber"]) == ["A-1", "B-7"]
    # several reports: each transaction names the report file its source_row (line) is in
    assert tx.select("txn_id", "source_file").rows() == [
        ("A-2", "bank_a_str_0001.xml"),
        ("A-1", "bank_a_str_0001.xml"),
        ("B-8", "bank_b_ctr_0042.xml"),
    ]
    one = goaml(REPORTS / "bank_a_str_0001.xml").transactions  # one file: as before, none
    assert "source_file" not in one.collect_schema().names()
    a1 = tx.row(1, named=True)
    assert a1["src_account"] == "BANKA:AT001001" and a1["dst_account"] == "BANKB:DE002002"
    assert a1["amount"] == 9500.0 and a1["currency"] == "EUR" and a1["channel"] == "wire"
    assert a1["ts"] == datetime(2024, 3, 1, 10, 15, tzinfo=UTC)
    assert a1["src_country"] == "AT" and a1["dst_country"] == "DE"
    cash = tx.row(0, named=True)  # a walk-in person's cash: a pseudo-account, cash_deposit
    assert cash["src_account"] == "person:P1234567" and cash["channel"] == "cash_deposit"
    usd = tx.row(2, named=True)  # the foreign amount is the amount; amount_base from local
    assert (usd["amount"], usd["currency"]) == (10000.0, "USD")
    assert usd["amount_base"] == pytest.approx(9200.0 / 0.8534, rel=0.05)
    acc = result.accounts.collect()
    assert acc["account_id"].is_unique().all()
    ivan = acc.filter(pl.col("account_id") == "BANKA:AT001001").row(0, named=True)
    assert ivan["name"] == "Ivan Sergeyevich Petrov" and ivan["kind"] == "individual"
    assert ivan["birth_date"].isoformat() == "1980-02-03"
    assert (ivan["id_number"], ivan["id_type"], ivan["nationality"]) == (
        "P1234567",
        "passport",
        "BG",
    )
    assert ivan["phone"] == "+43 6641234567" and ivan["email"] == "ivan.petrov@example.org"
    assert ivan["address"] == "Ringstrasse 5, 1010 Vienna, AT" and ivan["bank_id"] == "BANKA"
    assert ivan["account_number"] == "AT001001" and ivan["iban"] == "AT611904300234573201"
    firm = acc.filter(pl.col("account_id") == "BANKB:DE002002").row(0, named=True)
    assert firm["kind"] == "business" and firm["id_number"] == "HRB 12345"
    assert firm["business_type"] == "Wholesale of textiles"
    assert "BANKC:BG003003" in acc["account_id"].to_list()  # from the activity report
    assert set(tx["src_account"]) | set(tx["dst_account"]) <= set(acc["account_id"])


def test_party_records_follow_the_contract():
    parties = goaml(REPORTS).parties
    ids = set(parties["record_id"])
    assert {
        "bank_a_str_0001.xml#A-1#signatory-1",
        "bank_a_str_0001.xml#A-1#to",
        "bank_a_str_0001.xml#A-2#from",
        "bank_a_str_0001.xml#A-2#signatory-1",
        "bank_b_ctr_0042.xml#B-7#signatory-1",
        "bank_b_ctr_0042.xml#B-7#to",
        "bank_b_ctr_0042.xml#B-7#signatory-2",
        "bank_b_ctr_0042.xml#B-7#to-director-1",  # Schmidt Trading's director, Anna
        "bank_b_ctr_0042.xml#B-8#from",
        "bank_b_ctr_0042.xml#B-8#from-director-1",
        "bank_c_sar_0007.xml#activity#1",
        "bank_c_sar_0007.xml#activity#2#signatory-1",
        "bank_c_sar_0007.xml#activity#3",
    } == ids
    assert parties["record_id"].is_unique().all()
    iwan = parties.filter(pl.col("record_id") == "bank_b_ctr_0042.xml#B-7#signatory-1").row(
        0, named=True
    )
    assert (iwan["name"], iwan["kind"], iwan["account_id"]) == (
        "Iwan Petrow",
        "person",
        "BANKA:AT001001",
    )
    walk_in = parties.filter(pl.col("record_id") == "bank_a_str_0001.xml#A-2#from").row(
        0, named=True
    )
    assert walk_in["account_id"] is None and walk_in["txn_account"] == "person:P1234567"
    assert parties.schema["birth_date"] == pl.Date
    for column in ("first_name", "last_name", "id_type", "nationality", "country", "source_file"):
        assert column in parties.columns


@needs_xsd
def test_a_report_failing_the_xsd_is_quarantined_and_the_rest_read(tmp_path):
    folder = with_bad(tmp_path, INVALID)
    result = goaml(folder, XSD, fraction=0.5)
    assert result.rejects.height == 1 and not result.warnings
    bad = result.rejects.row(0, named=True)
    assert bad["source_file"] == INVALID.name and bad["source_row"] is None
    assert bad["column"] == "/report/transaction[2]/amount_local"
    assert "does not validate" in bad["reason"] and "transmode_code" in bad["reason"]
    assert json.loads(bad["record"])  # every violation, with its path
    tx = result.transactions.collect()
    assert tx.height == 3 and not tx["txn_id"].str.starts_with("D-").any()
    # without an XSD it is structurally readable: read, with a warning in the result
    loose = goaml(folder, fraction=0.5)
    assert loose.rejects.is_empty() and "no goAML XSD" in loose.warnings[0]


def test_a_malformed_file_is_quarantined_and_the_rest_read(tmp_path):
    result = goaml(with_bad(tmp_path, TRUNCATED), fraction=0.5)
    bad = result.rejects.row(0, named=True)
    assert bad["source_file"] == TRUNCATED.name and "not well-formed" in bad["reason"]
    assert bad["column"].startswith("/report (line 71")
    assert result.transactions.collect().height == 3
    with pytest.raises(InputError, match="1 of 4 reports could not be read"):
        goaml(with_bad(tmp_path / "again", TRUNCATED))  # over the 5 % allowed


def test_a_transaction_that_does_not_parse_is_one_reject(tmp_path):
    text = (REPORTS / "bank_a_str_0001.xml").read_text()
    (tmp_path / "r.xml").write_text(text.replace("<amount_local>9000<", "<amount_local>9.000,00<"))
    result = goaml(tmp_path / "r.xml", fraction=0.5)
    bad = result.rejects.row(0, named=True)
    assert bad["column"] == "/report/transaction[2]/amount_local" and bad["value"] == "9.000,00"
    assert bad["source_row"] == 105 and "not a decimal" in bad["reason"]
    assert result.transactions.collect()["txn_id"].to_list() == ["A-1"]


def test_a_zip_of_reports(tmp_path):
    archive = tmp_path / "intake.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for file in sorted(REPORTS.glob("*.xml")):
            z.write(file, file.name)
        z.write(TRUNCATED, TRUNCATED.name)
    assert detect_format(archive) == "goaml"
    result = read(archive, max_reject_fraction=0.5)
    assert isinstance(result, GoamlResult)
    plain = goaml(REPORTS)
    assert result.transactions.collect().equals(plain.transactions.collect())
    assert result.accounts.collect().equals(plain.accounts.collect())
    assert result.parties.equals(plain.parties)
    assert result.rejects["source_file"].to_list() == [TRUNCATED.name]


def test_detection():
    assert detect_format(REPORTS) == "goaml"
    assert detect_format(REPORTS / "bank_c_sar_0007.xml") == "goaml"


def test_the_same_amounts_on_one_day_stay_apart_within_a_report(tmp_path):
    """Structuring: three equal deposits in one report are three; the other bank's report of
    two of them adds none."""
    text = (REPORTS / "bank_a_str_0001.xml").read_text()
    start, end = (
        text.index("  <transaction>\n    <transactionnumber>A-2"),
        text.index("  <report_indicators>"),
    )
    cash = text[start:end]
    copies = "".join(cash.replace(">A-2<", f">A-2{c}<") for c in "xyz")
    (tmp_path / "a.xml").write_text(text[:start] + copies + text[end:])
    other = text[:start] + "".join(cash.replace(">A-2<", f">Z-{c}<") for c in "12") + text[end:]
    (tmp_path / "b.xml").write_text(other.replace(">A-1<", ">Z-0<"))
    result = goaml(tmp_path)
    assert result.transactions.collect().height == 4  # A-1 and three deposits
    assert result.reports.height == 7


def test_round_trip_with_the_exporter(store, settings_file, tmp_path):  # noqa: F811
    from lxml import etree

    from flows87.investigate.export import load_goaml_settings
    from flows87.investigate.export.goaml import build_report
    from flows87.investigate.store.queries import case_detail

    with store.session() as s:
        detail = case_detail(s, "C-aaa", audit_limit=1)
    root = build_report(detail, load_goaml_settings(settings_file))
    (tmp_path / "case.xml").write_bytes(etree.tostring(root, xml_declaration=True))
    result = goaml(tmp_path / "case.xml", XSD if XSD.exists() else None)
    assert result.rejects.is_empty()
    back = result.transactions.collect().sort("txn_id")
    sent = pl.DataFrame(detail["transactions"]).sort("txn_id")
    assert back["txn_id"].to_list() == sent["txn_id"].to_list()
    assert back["amount_base"].to_list() == pytest.approx(sent["amount_base"].to_list())
    assert back["channel"].to_list() == sent["channel"].to_list()
    assert [t.replace(microsecond=0) for t in sent["ts"].dt.replace_time_zone("UTC")] == list(
        back["ts"]
    )
    code = load_goaml_settings(settings_file).institution_code
    accounts = {a["account_id"]: a for a in detail["accounts"]}
    for end in ("src", "dst"):
        numbers = back[f"{end}_account"].str.split(":").list.get(1).to_list()
        assert numbers == sent[f"{end}_account"].to_list()
    acc = result.accounts.collect()
    for row in acc.iter_rows(named=True):
        original = accounts[row["account_number"]]
        assert row["bank_id"] == (original.get("bank_id") or code)
        assert row["account_id"] == f"{row['bank_id']}:{row['account_number']}"
        assert row["name"] == original.get("name")


def test_ingest_command_end_to_end(tmp_path, monkeypatch, capsys):
    if XSD.exists():
        monkeypatch.setenv("FLOWS87_GOAML_XSD", str(XSD))
    out = tmp_path / "run"
    args = ["ingest", str(REPORTS), "--format", "goaml", "--out", str(out), "--json", "--quiet"]
    assert main(args) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["transactions"] == 3 and summary["accounts"] == 6
    assert summary["quarantined"] == {"accounts": 0, "transactions": 0}
    assert pl.read_parquet(out / "transactions.parquet").height == 3
    acc = pl.read_parquet(out / "accounts.parquet")
    assert acc.filter(pl.col("id_number") == "P1234567").height == 3
    assert (out / "quality").is_dir()  # the GX gate ran


@given(st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=4))
def test_amounts_parse_as_the_xsd_decimal_writes_them(value: Decimal):
    assert parse_amount(f" {value:f} ") == pytest.approx(float(value))


@given(st.text(alphabet="0123456789.,eE+- ", max_size=12))
def test_an_amount_parses_only_when_it_is_a_decimal(text: str):
    try:
        Decimal(text.strip())
        decimal = "e" not in text.lower() and "," not in text and text.strip() not in ("", ".")
    except ArithmeticError:
        decimal = False
    try:
        parse_amount(text)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed == decimal


@given(
    st.datetimes(min_value=datetime(1753, 1, 1), max_value=datetime(9999, 1, 1)),
    st.sampled_from(["", "Z", "+02:00", "-05:30"]),
)
def test_dates_parse_as_the_xsd_datetime_writes_them(ts: datetime, zone: str):
    text = ts.strftime("%Y-%m-%dT%H:%M:%S") + zone
    offset = {"": 0, "Z": 0, "+02:00": 120, "-05:30": -330}[zone]
    expected = ts.replace(microsecond=0, tzinfo=UTC) - timedelta(minutes=offset)
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["2024-03-01", "01.03.2024 10:00", "2024-13-01T00:00:00", ""])
def test_dates_that_are_not_xsd_datetimes_are_refused(text: str):
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_the_run_directory_keeps_the_party_records_and_the_reader_notes(tmp_path):
    """The ingest stage publishes the reader's party records beside the canonical tables (the
    resolution stage reads RUN/parties.parquet) and puts its notes in the read summary; a
    re-run on an input without them removes the earlier ones."""
    from flows87.io import read_json
    from flows87.pipeline.run import ingest
    from flows87.rundir import RunDir

    run = RunDir(tmp_path / "run")
    ingest(REPORTS, run.path)
    parties = pl.read_parquet(run.parties)
    assert parties.height == goaml(REPORTS).parties.height > 0
    assert parties["record_id"].str.contains("#").all()
    assert pl.read_parquet(run.side_table("goaml_reports")).height > 0
    notes = read_json(run.stage_record("read"))["warnings"]
    assert any("XSD" in n for n in notes), notes  # no XSD configured: checked for structure only

    synth = tmp_path / "synth"
    assert main(["synth", "--accounts", "800", "--days", "7", "--out", str(synth)]) == EXIT_OK
    ingest(synth, run.path)
    assert not run.parties.exists() and not run.side_table("goaml_reports").exists()


def test_nothing_readable_is_refused_with_the_reason(tmp_path):
    """Every report set aside (a tolerant max_reject_fraction let it through) is a clear
    refusal naming the file and the first problem, not a crash on an empty concat."""
    bad = tmp_path / "random.csv"
    bad.write_bytes(b"\x00not xml")
    with pytest.raises(InputError, match=r"no goAML report could be read .*not well-formed"):
        goaml(bad, fraction=1.0)
