"""goAML STR and CSV exports of a case; the XSD is ../shared/goaml/goAMLSchema-5.0.1.xsd."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from postgres import make_run

from flows87.investigate.export import (
    GoamlValidationError,
    export_goaml,
    load_goaml_settings,
    transactions_csv,
    validate_report,
)
from flows87.investigate.store import Store, load_run
from flows87.investigate.store.audit import audit_entries

XSD = Path(__file__).resolve().parents[2] / "shared" / "goaml" / "goAMLSchema-5.0.1.xsd"
needs_xsd = pytest.mark.skipif(
    not XSD.exists() and os.environ.get("CI") is None, reason=f"goAML schema not at {XSD}"
)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "cases.db")
    s.upgrade()
    with s.session() as session:
        load_run(
            session,
            make_run(tmp_path / "run", memo='=HYPERLINK("http://evil")', name="<script>x</script>"),
            "2026-01-01",
        )
    yield s
    s.dispose()


@needs_xsd
def test_goaml_report_validates_against_the_xsd(store):
    with store.session() as s:
        xml, schema = export_goaml(
            s, "C-aaa", xsd=XSD, actor="tester", submission_date=datetime(2026, 2, 1, tzinfo=UTC)
        )
        assert schema == XSD
        assert audit_entries(s, entity_id="C-aaa")[0]["action"] == "case.exported_goaml"
    assert validate_report(xml, XSD) == []
    root = etree.fromstring(xml)
    assert root.tag == "report"
    assert root.findtext("report_code") == "STR"
    assert root.findtext("rentity_id") == "1"
    assert root.findtext("submission_date") == "2026-02-01T00:00:00"
    assert root.find("reporting_person/last_name") is not None
    txns = root.findall("transaction")
    assert [t.findtext("transactionnumber") for t in txns] == [
        "T000",
        "T001",
        "T004",
        "T005",
        "T008",
    ]
    first = txns[0]
    assert first.findtext("t_from/from_account/account") == "A1"
    assert first.findtext("t_to/to_account/account") == "A2"
    assert first.findtext("t_to/to_country") == "MX"
    assert first.findtext("t_from/from_account/account_name") == "<script>x</script>"  # as text
    assert b"<script>" not in xml  # escaped in the XML
    assert [i.text for i in root.findall("report_indicators/indicator")] == ["-"]
    assert "sex trafficking" in root.findtext("reason")


@needs_xsd
def test_an_invalid_report_is_refused_with_the_violations(store, tmp_path):
    settings = load_goaml_settings().model_copy(
        update={"indicators": {"sex_trafficking": ["HT-SEX"]}, "report_code": "SAR-X"}
    )
    with store.session() as s, pytest.raises(GoamlValidationError) as info:
        export_goaml(s, "C-aaa", settings=settings, xsd=XSD)
    joined = "\n".join(info.value.violations)
    assert "indicator" in joined and "HT-SEX" in joined
    assert "report_code" in joined and "SAR-X" in joined
    assert "does not validate" in str(info.value) and "2 violations" in str(info.value)
    # without a schema nothing is validated, and the caller is told so
    with store.session() as s:
        xml, schema = export_goaml(s, "C-aaa", settings=settings, validate=False)
    assert schema is None and b"HT-SEX" in xml


def test_settings_file_errors_name_the_field(tmp_path):
    from flows87.errors import ConfigError

    bad = tmp_path / "goaml.yaml"
    bad.write_text("rentity_id: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="rentity_id"):
        load_goaml_settings(bad)


def test_csv_export_quotes_formulas(store):
    with store.session() as s:
        text = transactions_csv(s, "C-aaa")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["txn_id"] for r in rows] == ["T000", "T001", "T004", "T005", "T008"]
    assert rows[0]["memo"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["case_id"] == "C-aaa" and float(rows[0]["amount"]) == 100.0


@needs_xsd
def test_cli_export_goaml_and_csv(store, tmp_path):
    from flows87.cli import main

    db = str(tmp_path / "cases.db")
    out = tmp_path / "str.xml"
    assert main(["export", "goaml", "C-aaa", "--out", str(out), "--xsd", str(XSD), "--db", db]) == 0
    assert validate_report(out.read_bytes(), XSD) == []
    assert main(["export", "goaml", "C-nope", "--out", str(out), "--db", db]) == 2
    assert main(["export", "csv", "C-bbb", "--out", str(tmp_path / "t.csv"), "--db", db]) == 0
    assert (tmp_path / "t.csv").read_text().count("\n") == 4
