"""goAML STR and CSV exports of a case; the XSD is ../shared/goaml/goAMLSchema-5.0.1.xsd.
The rules around the goAML export (configuration, who may export, narrative, audit) are tested
in test_export_rules.py, with the fixtures and helpers of this module."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from lxml import etree
from postgres import make_run

from flows87.investigate.export import (
    EXAMPLE_SETTINGS,
    GoamlValidationError,
    export_goaml,
    load_goaml_settings,
    transactions_csv,
    validate_report,
)
from flows87.investigate.store import (
    Store,
    change_status,
    comment,
    create_user,
    decide_report,
    get_user,
    load_run,
    request_report,
)
from flows87.investigate.store.audit import audit_entries
from flows87.investigate.store.models import User

XSD = Path(__file__).resolve().parents[2] / "shared" / "goaml" / "goAMLSchema-5.0.1.xsd"
needs_xsd = pytest.mark.skipif(
    not XSD.exists() and os.environ.get("CI") is None, reason=f"goAML schema not at {XSD}"
)


USERS = {"ivy": "investigator", "ian": "investigator", "sam": "supervisor", "sue": "supervisor"}
PASSWORD = "export-test-password"
ENTITY = {
    "rentity_id": 4711,
    "reporting_person": {
        "first_name": "Maria",
        "last_name": "Lopez",
        "occupation": "MLRO",
        "email": "mlro@riverside-bank.test",
    },
    "location": {
        "address_type": "4",
        "address": "12 Harbour Road",
        "city": "Portsmouth",
        "country_code": "US",
    },
    "institution_name": "Riverside Savings Bank",
    "institution_code": "RSB01",
}


@pytest.fixture(autouse=True)
def no_goaml_env(monkeypatch):
    """No goAML settings or XSD from the environment the tests run in."""
    monkeypatch.delenv("FLOWS87_GOAML_SETTINGS", raising=False)
    monkeypatch.delenv("FLOWS87_GOAML_XSD", raising=False)


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
        for name, role in USERS.items():
            create_user(session, name, role, PASSWORD)
    yield s
    s.dispose()


def write_settings(path: Path, **changes) -> Path:
    """A reporting entity's settings file: the example with a real-looking entity filled in."""
    data = yaml.safe_load(EXAMPLE_SETTINGS.read_text(encoding="utf-8"))
    data.update(ENTITY)
    data.update(changes)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return write_settings(tmp_path / "goaml-settings.yaml")


def user(session, name: str) -> User:
    return get_user(session, name)


def report_case(store, case_id: str = "C-aaa", note: str = "Called the branch.") -> None:
    """ivy reviews the case, writes a note and asks for a report; sam approves it."""
    with store.session() as s:
        ivy = user(s, "ivy")
        change_status(s, ivy, case_id, "in_review")
        comment(s, ivy, case_id, note)
        request_report(s, ivy, case_id, "Nightly cash-ins from four venues, then wires to MX.")
        decide_report(s, user(s, "sam"), case_id, approve=True, comment="Agreed, file it.")


@needs_xsd
def test_goaml_report_validates_against_the_xsd(store, settings_file):
    report_case(store)
    with store.session() as s:
        xml, schema = export_goaml(
            s,
            "C-aaa",
            settings=load_goaml_settings(settings_file),
            xsd=XSD,
            actor=user(s, "ivy"),
            submission_date=datetime(2026, 2, 1, tzinfo=UTC),
        )
        assert schema == XSD.resolve()
        assert audit_entries(s, entity_id="C-aaa")[0]["action"] == "case.exported_goaml"
    assert validate_report(xml, XSD) == []
    root = etree.fromstring(xml)
    assert root.tag == "report"
    assert root.findtext("report_code") == "STR"
    assert root.findtext("rentity_id") == "4711"
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
def test_an_invalid_report_is_refused_with_the_violations(store, settings_file):
    settings = load_goaml_settings(settings_file).model_copy(
        update={"indicators": {"sex_trafficking": ["HT-SEX"]}, "report_code": "SAR-X"}
    )
    with store.session() as s, pytest.raises(GoamlValidationError) as info:
        export_goaml(s, "C-aaa", settings=settings, xsd=XSD, role="supervisor")
    joined = "\n".join(info.value.violations)
    assert "indicator" in joined and "HT-SEX" in joined
    assert "report_code" in joined and "SAR-X" in joined
    assert "does not validate" in str(info.value) and "2 violations" in str(info.value)
    # without validation the report is written, and the caller is told so
    with store.session() as s:
        xml, schema = export_goaml(s, "C-aaa", settings=settings, validate=False, role="supervisor")
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
def test_cli_export_goaml_and_csv(store, tmp_path, settings_file):
    from flows87.cli import main

    report_case(store)
    db = str(tmp_path / "cases.db")
    out = tmp_path / "str.xml"
    goaml = ["export", "goaml", "--settings", str(settings_file), "--xsd", str(XSD), "--db", db]
    assert main([*goaml, "C-aaa", "--out", str(out)]) == 0
    assert validate_report(out.read_bytes(), XSD) == []
    assert main([*goaml, "C-nope", "--out", str(out)]) == 2
    assert main(["export", "csv", "C-bbb", "--out", str(tmp_path / "t.csv"), "--db", db]) == 0
    assert (tmp_path / "t.csv").read_text().count("\n") == 4
