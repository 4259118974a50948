"""The case page says each thing once and in words (issue 14, item 5), and tells who must
approve a report (item 3): over HTTP against a store loaded from a real pipeline run.

Before: one block per signal, so a pattern over 19 accounts printed its evidence 19 times;
windows ended after the run; "1 wage payments"; evidence keys as field names ("n transfers")."""

from __future__ import annotations

import html
import re
from collections import defaultdict

from web_client import case_ids, client_for, post_form, top_case

from flows87.investigate.store import case_detail, get_case
from flows87.investigate.web.case_view import EVIDENCE_WORDS

SECTION = re.compile(r'<section id="signals".*?</section>', re.S)


def signals_html(page: str) -> str:
    m = SECTION.search(page)
    assert m, "no signals section"
    return m.group(0)


def instances_of(detail) -> dict[tuple[str, str], set[str]]:
    """(rule, pattern instance) -> its member accounts, from the store's evidence."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for sig in detail["signals"]:
        out[(sig["signal_id"], sig["evidence"].get("instance") or sig["account_id"])].add(
            sig["account_id"]
        )
    return out


def test_each_pattern_instance_is_shown_once_with_its_members(app, store):
    case_id = top_case(store)
    with store.session() as s:
        d = case_detail(s, case_id)
    instances = instances_of(d)
    shared = [k for k, members in instances.items() if len(members) > 1]
    assert shared, "the top case of the test run has no pattern over several accounts"
    assert len(d["signals"]) > len(instances)  # what the page used to repeat
    page = client_for(app, "ivy").get(f"/cases/{case_id}").text
    section = signals_html(page)
    assert section.count('<div class="instance">') == len(instances)
    for rule, instance in shared:
        members = instances[(rule, instance)]
        rule_block = section.split(f'id="rule-{rule}"', 1)[1].split('<details class="rule"', 1)[0]
        # the members are listed in one block, each once in its list and once in its table
        for account in members:
            assert rule_block.count(f"<code>{account}</code>") >= 2, (rule, account)
        assert f"{len(members)} accounts:" in rule_block
        assert f"Per account ({len(members)})" in rule_block


def test_dates_have_the_year_and_stop_at_the_last_transaction(app, store):
    case_id = top_case(store)
    with store.session() as s:
        d = case_detail(s, case_id)
    last_day = d["case"]["last_ts"].date().isoformat()
    assert any(
        sig["window_end"] and sig["window_end"].date().isoformat() > last_day
        for sig in d["signals"]
    ), "the run has no window ending after the case (nothing to clip)"
    text = html.unescape(signals_html(client_for(app, "ivy").get(f"/cases/{case_id}").text))
    days = re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text)
    assert days and max(days) <= last_day, (max(days), last_day)
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:", text)  # no ISO times in sentences
    assert not re.search(r"\b[A-Z][a-z]{2} \d{2}\b", text)  # no "Nov 09" without a year


def test_singular_after_one_and_no_field_names_in_sentences(app, store):
    case_id = top_case(store)
    with store.session() as s:
        d = case_detail(s, case_id)
    assert any(" 1 wage payments" in sig["summary"] for sig in d["signals"])
    text = html.unescape(signals_html(client_for(app, "ivy").get(f"/cases/{case_id}").text))
    assert "1 wage payments" not in text and "1 wage payment " in text
    terms = re.findall(r"<dt>(.*?)</dt>", text)
    assert terms
    keys = {k for sig in d["signals"] for k in sig["evidence"]}
    for term in terms:
        assert "_" not in term and not term.startswith("n "), term
        # a key in the evidence is shown with its words, not as the field name
        assert term not in {k.replace("_", " ") for k in keys if k in EVIDENCE_WORDS} or (
            EVIDENCE_WORDS.get(term.replace(" ", "_")) == term
        ), term
    assert "['" not in text  # no Python list brackets in sentences


def test_a_report_names_who_may_approve_and_closes_with_two_supervisors(app, store):
    """Four eyes: sam asks, the flash and the case page say sue (or ada, an admin) decides;
    sam cannot; sue approves and the case is closed as reported."""
    case_id = case_ids(store)[3]
    sam, sue, ivy = client_for(app, "sam"), client_for(app, "sue"), client_for(app, "ivy")
    assert post_form(sam, f"/cases/{case_id}/status", {"status": "in_review"}).status_code == 303
    r = post_form(
        sam, f"/cases/{case_id}/close", {"disposition": "reported", "reason": "payroll recaptured"}
    )
    assert r.status_code == 303
    page = html.unescape(sam.get(r.headers["location"]).text)
    assert "waiting for approval by another supervisor: ada or sue." in page
    assert 'id="waiting-on"' in page and "<strong>ada or sue</strong>" in page
    assert 'id="approval-form"' not in page  # not for the one who asked
    assert post_form(sam, f"/cases/{case_id}/approval", {"decision": "approve"}).status_code == 403
    assert "ada or sue" in html.unescape(ivy.get(f"/cases/{case_id}").text)
    assert 'id="approval-form"' in sue.get(f"/cases/{case_id}").text
    assert post_form(sue, f"/cases/{case_id}/approval", {"decision": "approve"}).status_code == 303
    with store.session() as s:
        case = get_case(s, case_id)
        assert (case.status, case.disposition) == ("closed", "reported")


def test_the_page_says_why_the_case_ranks_where_it_does(app, store):
    case_id = top_case(store)
    with store.session() as s:
        reason = get_case(s, case_id).risk_reason
    assert reason and "flagged in" in reason  # the run wrote cases.parquet's risk_reason
    page = client_for(app, "ivy").get(f"/cases/{case_id}").text
    assert f'<p id="risk-reason">Why this risk: {html.escape(reason)}</p>' in page
    queue = client_for(app, "ivy").get("/cases").text
    assert f'title="{html.escape(reason)}"' in queue


def test_the_goaml_button_is_offered_only_to_who_may_export(app, store):
    case_id = top_case(store)  # open, nobody reviewed it
    investigator = client_for(app, "ivy").get(f"/cases/{case_id}").text
    assert 'id="goaml-refusal"' in investigator
    assert f'action="/cases/{case_id}/export/goaml"' not in investigator
    supervisor = client_for(app, "sue").get(f"/cases/{case_id}").text
    assert 'id="goaml-refusal"' not in supervisor
    assert f'action="/cases/{case_id}/export/goaml"' in supervisor
