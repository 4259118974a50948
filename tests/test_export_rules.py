"""The rules around a goAML export an FIU can trust (issue 14, item 2): no export until the
reporting entity is configured (and not with the example's placeholders), the narrative from
what the investigators wrote, validation against the FIU's XSD by default, an STR only for a case
closed as reported with its approval (or by a supervisor), and every export audited, in the
library, the web app and the CLI. Real store, real XSD (../shared/goaml), real HTTP client.
The fixtures (store, settings_file, no_goaml_env) are test_export.py's, imported by name."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from test_export import (
    PASSWORD,
    XSD,
    needs_xsd,
    no_goaml_env,
    report_case,
    settings_file,
    store,
    user,
    write_settings,
)

from flows87.investigate.export import (
    EXAMPLE_SETTINGS,
    GoamlNotConfigured,
    export_goaml,
    export_refusal,
    load_goaml_settings,
    validate_report,
)
from flows87.investigate.store import PermissionDenied, change_status, close_case, comment
from flows87.investigate.store.audit import audit_entries

FIXTURES = (no_goaml_env, settings_file, store)


def last_export(session, case_id: str) -> dict:
    entries = [
        e
        for e in audit_entries(session, entity_type="case", entity_id=case_id)
        if e["action"] == "case.exported_goaml"
    ]
    assert entries, f"no export of {case_id} in the audit log"
    after = entries[0]["after"]
    return {
        **(json.loads(after) if isinstance(after, str) else after),
        "actor": entries[0]["actor"],
    }


def exports(session, case_id: str) -> int:
    return sum(
        e["action"] == "case.exported_goaml"
        for e in audit_entries(session, entity_type="case", entity_id=case_id)
    )


# --- configuration ------------------------------------------------------------------------------


def test_without_settings_the_export_refuses_naming_the_env_var_and_the_example(store):
    with pytest.raises(GoamlNotConfigured) as info:
        load_goaml_settings()
    message = str(info.value)
    assert "FLOWS87_GOAML_SETTINGS" in message and str(EXAMPLE_SETTINGS) in message
    assert "--settings" in message
    # a supervisor may export any case, but not before the FIU configured its entity
    with store.session() as s, pytest.raises(GoamlNotConfigured):
        export_goaml(s, "C-aaa", actor=user(s, "sam"), validate=False)
    with store.session() as s:
        assert exports(s, "C-aaa") == 0


def test_the_bundled_example_entity_is_not_a_configuration(tmp_path, monkeypatch):
    with pytest.raises(GoamlNotConfigured) as info:
        load_goaml_settings(EXAMPLE_SETTINGS)
    message = str(info.value)
    assert "placeholder" in message
    assert "rentity_id=1" in message and "mlro@example.org" in message
    assert "1 Example Street" in message
    # through the environment variable too, and with only some placeholders replaced
    monkeypatch.setenv("FLOWS87_GOAML_SETTINGS", str(EXAMPLE_SETTINGS))
    with pytest.raises(GoamlNotConfigured, match="placeholder"):
        load_goaml_settings()
    half = write_settings(tmp_path / "half.yaml", institution_name="Example Bank")
    with pytest.raises(GoamlNotConfigured, match="institution_name='Example Bank'"):
        load_goaml_settings(half)
    # a real entity whose FIU id happens to be 1 is fine
    assert load_goaml_settings(write_settings(tmp_path / "one.yaml", rentity_id=1)).rentity_id == 1


# --- narrative -------------------------------------------------------------------------------


@needs_xsd
def test_the_narrative_comes_from_the_closing_reason_and_the_notes(store, settings_file):
    report_case(store, note="Called the branch: the venues \x07share one phone number.")
    with store.session() as s:
        comment(s, user(s, "sue"), "C-aaa", "Account holder informed nothing (tipping-off rule).")
        xml, _ = export_goaml(
            s, "C-aaa", settings=load_goaml_settings(settings_file), xsd=XSD, actor=user(s, "ivy")
        )
    root = etree.fromstring(xml)
    reason, action = root.findtext("reason"), root.findtext("action")
    assert "Nightly cash-ins from four venues, then wires to MX." in reason  # ivy's request
    assert "Approved by sam: Agreed, file it." in reason
    assert "Closed as reported (STR filed) by sam" in reason
    assert "suspected sex trafficking" in reason  # the evidence summary
    # the notes, oldest first, with author; a control character is dropped, not a failure
    assert "ivy: Called the branch: the venues share one phone number." in action
    assert action.index("ivy:") < action.index("sue: Account holder informed nothing")
    assert "enhanced monitoring" not in xml.decode()  # the example's canned text is gone


@needs_xsd
def test_a_long_narrative_is_cut_to_the_schema_limit_with_a_marker(store, settings_file):
    report_case(store, note="The same venue again. " * 600)  # 13,200 characters
    with store.session() as s:
        xml, _ = export_goaml(
            s, "C-aaa", settings=load_goaml_settings(settings_file), xsd=XSD, actor=user(s, "ivy")
        )
    action = etree.fromstring(xml).findtext("action")
    assert len(action) == 8000
    assert re.search(r"\[\.\.\. cut: \d+ characters, the schema allows 8000; .*C-aaa\]$", action)
    assert validate_report(xml, XSD) == []


# --- validation ------------------------------------------------------------------------------


@needs_xsd
def test_validation_is_on_by_default_and_audited(store, settings_file, monkeypatch):
    monkeypatch.setenv("FLOWS87_GOAML_SETTINGS", str(settings_file))
    with store.session() as s, pytest.raises(GoamlNotConfigured) as info:
        export_goaml(s, "C-aaa", actor=user(s, "sam"))
    assert "no XSD" in str(info.value) and "FLOWS87_GOAML_XSD" in str(info.value)
    assert "--no-validate" in str(info.value)
    monkeypatch.setenv("FLOWS87_GOAML_XSD", str(XSD))
    with store.session() as s:
        xml, schema = export_goaml(s, "C-aaa", actor=user(s, "sam"))
        entry = last_export(s, "C-aaa")
    assert schema == XSD.resolve()
    assert entry["validated"] is True
    assert entry["validated_against"] == str(XSD.resolve())
    assert entry["xsd_sha256"] == hashlib.sha256(XSD.read_bytes()).hexdigest()
    assert entry["report_sha256"] == hashlib.sha256(xml).hexdigest()
    assert entry["settings_file"] == str(settings_file.resolve())
    assert entry["actor"] == "sam" and entry["role"] == "supervisor"
    # explicitly without validation: written, and the audit entry says it was not validated
    with store.session() as s:
        _, schema = export_goaml(s, "C-aaa", actor=user(s, "sam"), validate=False)
        entry = last_export(s, "C-aaa")
    assert schema is None
    assert entry["validated"] is False and entry["validated_against"] is None


@needs_xsd
def test_the_settings_schema_is_relative_to_the_settings_file(store, tmp_path):
    folder = tmp_path / "fiu"
    folder.mkdir()
    shutil.copy(XSD, folder / "fiu.xsd")
    settings = load_goaml_settings(write_settings(folder / "goaml.yaml", schema="fiu.xsd"))
    with store.session() as s:
        _, schema = export_goaml(s, "C-aaa", settings=settings, role="supervisor")
    assert schema == (folder / "fiu.xsd").resolve()


# --- who may export --------------------------------------------------------------------------


@needs_xsd
def test_an_unreviewed_case_is_refused_to_an_investigator(store, settings_file):
    settings = load_goaml_settings(settings_file)
    with store.session() as s:
        refusal = export_refusal(s, "C-aaa", "investigator")
        assert refusal and "C-aaa is new" in refusal and "closed as reported" in refusal
        assert export_refusal(s, "C-aaa", "supervisor") is None
        assert export_refusal(s, "C-aaa", "admin") is None
        with pytest.raises(PermissionDenied, match="closed as reported"):
            export_goaml(s, "C-aaa", settings=settings, xsd=XSD, actor=user(s, "ivy"))
        # a library call without an acting user is held to the investigator's rule
        with pytest.raises(PermissionDenied):
            export_goaml(s, "C-aaa", settings=settings, xsd=XSD)
        # closed, but not as reported
        ivy = user(s, "ivy")
        change_status(s, ivy, "C-bbb", "in_review")
        close_case(s, ivy, "C-bbb", "false_positive", "Payroll of a cleaning company.")
        assert "closed as false_positive" in export_refusal(s, "C-bbb", "investigator")
    report_case(store)
    with store.session() as s:
        assert export_refusal(s, "C-aaa", "investigator") is None
        export_goaml(s, "C-aaa", settings=settings, xsd=XSD, actor=user(s, "ian"))
        assert last_export(s, "C-aaa")["basis"] == "approved report"
        # a supervisor's export of a case nobody reported is audited as such
        export_goaml(s, "C-ccc", settings=settings, xsd=XSD, actor=user(s, "sue"))
        entry = last_export(s, "C-ccc")
    assert entry["actor"] == "sue"
    assert entry["basis"] == "supervisor (the case is not an approved report)"


# --- the web app ------------------------------------------------------------------------------


def signed_in(app, name: str) -> tuple[TestClient, str]:
    """A client signed in as `name`, and a CSRF token for its forms."""
    c = TestClient(app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post(
        "/login",
        data={"username": name, "password": PASSWORD, "csrf_token": token, "next": "/cases"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/cases").text).group(1)
    return c, token


@needs_xsd
def test_web_export_refusals_are_pages_and_exports_are_audited(store, settings_file, monkeypatch):
    from flows87.investigate.web import WebSettings, create_app

    app = create_app(store, WebSettings(secret_key="export-rules-secret-key-0123456789abcdef"))
    ivy, ivy_token = signed_in(app, "ivy")
    sam, sam_token = signed_in(app, "sam")

    def export(client, token, case_id):
        return client.post(
            f"/cases/{case_id}/export/goaml", data={"csrf_token": token}, follow_redirects=False
        )

    # an investigator, on a case nobody reviewed: a page with the reason, no download
    r = export(ivy, ivy_token, "C-aaa")
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in r.headers
    assert "closed as reported" in r.text and "Export refused" in r.text
    # a supervisor, before the FIU configured anything: a page naming what to configure
    r = export(sam, sam_token, "C-aaa")
    assert r.status_code == 503 and "content-disposition" not in r.headers
    assert "FLOWS87_GOAML_SETTINGS" in r.text and "goaml.example.yaml" in r.text
    monkeypatch.setenv("FLOWS87_GOAML_SETTINGS", str(settings_file))
    r = export(sam, sam_token, "C-aaa")
    assert r.status_code == 503 and "FLOWS87_GOAML_XSD" in r.text  # validation is not optional
    with store.session() as s:
        assert exports(s, "C-aaa") == 0
    monkeypatch.setenv("FLOWS87_GOAML_XSD", str(XSD))
    r = export(sam, sam_token, "C-aaa")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    assert validate_report(r.content, XSD) == []
    with store.session() as s:
        entry = last_export(s, "C-aaa")
    assert entry["actor"] == "sam" and entry["validated_against"] == str(XSD.resolve())
    assert entry["report_sha256"] == hashlib.sha256(r.content).hexdigest()
    assert entry["basis"].startswith("supervisor")
    # once reported and approved, the investigator's export goes through
    report_case(store)
    r = export(ivy, ivy_token, "C-aaa")
    assert r.status_code == 200, r.text
    with store.session() as s:
        assert last_export(s, "C-aaa")["basis"] == "approved report"


# --- the CLI ----------------------------------------------------------------------------------


@needs_xsd
def test_cli_export_is_refused_checked_and_audited(store, tmp_path, settings_file, capsys):
    from flows87.cli import main

    db = str(tmp_path / "cases.db")
    out = tmp_path / "str.xml"
    # no settings: refused, with the way to configure
    assert main(["export", "goaml", "C-aaa", "--out", str(out), "--db", db]) == 2
    assert "FLOWS87_GOAML_SETTINGS" in capsys.readouterr().err
    base = ["export", "goaml", "--settings", str(settings_file), "--xsd", str(XSD), "--db", db]
    # nobody reviewed C-aaa: refused without --as, and as an investigator
    assert main([*base, "C-aaa", "--out", str(out)]) == 2
    assert main([*base, "C-aaa", "--out", str(out), "--as", "ivy"]) == 2
    assert "closed as reported" in capsys.readouterr().err
    assert not out.exists()
    # a supervisor may, and the audit log says who, on what basis, and what was sent
    assert main([*base, "C-aaa", "--out", str(out), "--as", "sam"]) == 0
    with store.session() as s:
        entry = last_export(s, "C-aaa")
    assert entry["actor"] == "sam" and entry["basis"].startswith("supervisor")
    assert entry["report_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert entry["validated"] is True and entry["settings_file"] == str(settings_file.resolve())
    # an approved report needs no --as; the operating-system user is the actor
    report_case(store)
    assert main([*base, "C-aaa", "--out", str(out), "--no-validate"]) == 0
    with store.session() as s:
        entry = last_export(s, "C-aaa")
    assert entry["actor"].startswith("cli:") and entry["basis"] == "approved report"
    assert entry["validated"] is False and entry["validated_against"] is None
    assert "NOT validated" in capsys.readouterr().out
    assert main([*base, "C-aaa", "--out", str(out), "--as", "nobody"]) == 2
