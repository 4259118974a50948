"""The investigators' views (issue 14): closed cases out of the default queue, age and due
date, notes beside a status change, related cases, an account's page, search, evidence
transactions marked in a sortable, filterable table, a printable case file and rule sources
linked. HTTP against a store loaded from a real run, and Chromium for what scripts do; the
browser tests save a screenshot of each view in test-artifacts/browser/."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from test_browser import artifacts, browser, page, server, sign_in  # noqa: F401
from web_client import case_ids, client_for, post_form, top_case

from flows87.investigate.store import case_detail, list_cases
from flows87.investigate.store.models import Case, CaseAccount, CaseTransaction, Note
from flows87.investigate.web.citations import citation_url

ROW = re.compile(r'class="case-link" href="/cases/([^"]+)"')


def close(client, case_id: str) -> None:
    assert post_form(client, f"/cases/{case_id}/status", {"status": "in_review"}).status_code == 303
    r = post_form(
        client, f"/cases/{case_id}/close", {"disposition": "false_positive", "reason": "a shop"}
    )
    assert r.status_code == 303


def test_closed_cases_leave_the_default_queue_and_a_status_filter_shows_them(app, store):
    sam = client_for(app, "sam")
    case_id = case_ids(store)[0]
    close(sam, case_id)
    default = sam.get("/cases?page_size=200").text
    assert case_id not in ROW.findall(default)
    assert 'id="show-closed"' in default
    assert case_id in ROW.findall(sam.get("/cases?status=closed&page_size=200").text)
    everything = "&".join(f"status={s}" for s in ("new", "in_review", "escalated", "closed"))
    assert case_id in ROW.findall(sam.get(f"/cases?{everything}&page_size=200").text)


def test_age_due_date_and_overdue(app, store, monkeypatch):
    sam = client_for(app, "sam")
    with store.session() as s:
        case_id = list_cases(s, status=["new"], page_size=1).items[0]["case_id"]
        s.execute(
            update(Case)
            .where(Case.case_id == case_id)
            .values(first_seen_at=datetime.now(UTC) - timedelta(days=40, hours=1))
        )
    text = sam.get(f"/cases/{case_id}").text
    assert "open 40 days" in text and "overdue" in text
    assert case_id in ROW.findall(sam.get("/cases?overdue=1&page_size=200").text)
    monkeypatch.setenv("FLOWS87_CASE_DUE_DAYS", "60")  # due later: no longer overdue
    text = sam.get(f"/cases/{case_id}").text
    assert "open 40 days" in text and 'class="tag bad">overdue' not in text
    due = (datetime.now(UTC) - timedelta(days=40, hours=1) + timedelta(days=60)).date()
    assert f"due {due.isoformat()}" in text
    assert case_id not in ROW.findall(sam.get("/cases?overdue=1&page_size=200").text)


def test_a_note_typed_beside_a_status_change_is_kept_as_a_note(app, store):
    ivy = client_for(app, "ivy")
    case_id = case_ids(store)[4]
    assert post_form(ivy, f"/cases/{case_id}/assign", {"assignee": "me"}).status_code == 303
    r = post_form(
        ivy,
        f"/cases/{case_id}/status",
        {"status": "in_review", "reason": "asked the branch for the payroll contracts"},
    )
    assert r.status_code == 303
    text = html.unescape(ivy.get(r.headers["location"]).text)
    notes = text.split('id="notes"', 1)[1].split("</section>", 1)[0]
    assert "[in review] asked the branch for the payroll contracts" in notes
    with store.session() as s:
        bodies = list(s.scalars(select(Note.body).where(Note.case_id == case_id)))
    assert bodies == ["[in review] asked the branch for the payroll contracts"]


def test_related_cases_share_an_account_and_link(app, store):
    first, second = case_ids(store)[6:8]
    with store.session() as s:
        d = case_detail(s, first)
        account = d["accounts"][0]
        # a later run puts one of the first case's accounts in the second case as well
        s.add(
            CaseAccount(
                case_id=second,
                account_id=account["account_id"],
                position=999,
                role="member",
                families="[]",
                details="{}",
            )
        )
    text = client_for(app, "ivy").get(f"/cases/{first}").text
    related = text.split('id="related"', 1)[1].split("</section>", 1)[0]
    assert f'href="/cases/{second}"' in related
    assert f"<code>{account['account_id']}</code>" in related
    assert "No other case" in client_for(app, "ivy").get(f"/cases/{case_ids(store)[9]}").text


def test_account_page_lists_cases_transactions_identifiers_and_who_shares_them(app, store):
    case_id = top_case(store)
    with store.session() as s:
        d = case_detail(s, case_id)
        account = d["accounts"][0]
        n_txns = len(
            set(
                s.scalars(
                    select(CaseTransaction.txn_id).where(
                        (CaseTransaction.src_account == account["account_id"])
                        | (CaseTransaction.dst_account == account["account_id"])
                    )
                )
            )
        )
        # a second account with the same phone: the text must name it
        other = d["accounts"][1]["account_id"]
        phone = account["details"].get("phone") or "+1 000"
        row = s.scalars(select(CaseAccount).where(CaseAccount.account_id == other)).first()
        details = {**d["accounts"][1]["details"], "phone": phone}
        row.details = json.dumps(details, separators=(",", ":"), ensure_ascii=False)
    c = client_for(app, "ivy")
    r = c.get(f"/accounts/{account['account_id']}")
    assert r.status_code == 200
    text = html.unescape(r.text)
    assert f"Account {account['account_id']}" in text
    assert f'href="/cases/{case_id}"' in r.text
    assert f"{n_txns} transaction" in text
    assert text.count('<tr><td class="small">') == min(n_txns, 1000)
    if account["name"]:
        assert account["name"] in text
    shared = text.split('id="shared"', 1)[1]
    assert "Same phone" in shared and f"<code>{other}</code>" in shared
    assert c.get("/accounts/no-such-account").status_code == 404


def test_search_finds_accounts_by_id_and_name_and_transactions_by_id(app, store):
    with store.session() as s:
        a = s.scalars(select(CaseAccount).where(CaseAccount.name.is_not(None))).first()
        t = s.scalars(select(CaseTransaction)).first()
    c = client_for(app, "ivy")
    by_id = c.get("/search", params={"q": a.account_id}).text
    assert f'href="/accounts/{a.account_id}"' in by_id
    by_name = html.unescape(c.get("/search", params={"q": a.name.split()[-1].lower()}).text)
    assert f"/accounts/{a.account_id}" in by_name and "name" in by_name
    by_txn = c.get("/search", params={"q": t.txn_id}).text
    assert f"<code>{t.txn_id}</code>" in by_txn and f'href="/cases/{t.case_id}"' in by_txn
    assert "Nothing found" in c.get("/search", params={"q": "%_nothing_%"}).text
    assert 'action="/search"' in by_id  # the box in the header


def test_rule_sources_link_to_the_public_publication(app, store):
    case_id = top_case(store)
    text = client_for(app, "ivy").get(f"/cases/{case_id}").text
    links = re.findall(r'<a href="(https://[^"]+)" rel="noopener noreferrer"', text)
    assert links
    assert citation_url("FinCEN Advisory FIN-2020-A008 (2020)").startswith(
        "https://www.fincen.gov/"
    )
    assert citation_url("see https://example.org/x for more") == "https://example.org/x"
    assert citation_url("a source nobody knows") is None


def test_evidence_transactions_marked_sorted_filtered_and_printed(page, server, store, artifacts):  # noqa: F811
    pg = page
    case_id = top_case(store)
    with store.session() as s:
        d = case_detail(s, case_id)
    evidence = {t for sig in d["signals"] for t in sig["txn_ids"]}
    listed = [t["txn_id"] for t in d["transactions"][:1000]]
    marked = [t for t in listed if t in evidence]
    assert marked
    sign_in(pg, "ivy")
    pg.goto(f"/cases/{case_id}")
    pg.wait_for_function("window.flows87Tables === true")
    rows = pg.locator("#transactions-table tbody tr")
    assert rows.count() == len(listed)
    assert pg.locator("#transactions-table tbody tr.evidence").count() == len(marked)
    # sort by amount, both ways
    pg.click("#transactions-table th:has-text('Amount')")
    amounts = [
        float(v or "-inf")
        for v in pg.eval_on_selector_all(
            "#transactions-table tbody tr td[data-value]", "els => els.map(e => e.dataset.value)"
        )
    ]
    assert amounts == sorted(amounts)
    pg.click("#transactions-table th:has-text('Amount')")
    amounts = [
        float(v or "-inf")
        for v in pg.eval_on_selector_all(
            "#transactions-table tbody tr td[data-value]", "els => els.map(e => e.dataset.value)"
        )
    ]
    assert amounts == sorted(amounts, reverse=True)
    # evidence only, then a text filter
    pg.check("#transactions .evidence-only")
    assert pg.locator("#transactions-table tbody tr:not([hidden])").count() == len(marked)
    pg.uncheck("#transactions .evidence-only")
    pg.fill("#transactions .table-filter", listed[0])
    assert pg.locator("#transactions-table tbody tr:not([hidden])").count() == 1
    pg.locator("#transactions").screenshot(
        path=str(artifacts / "11-case-transactions-evidence.png")
    )
    pg.fill("#transactions .table-filter", "")
    pg.locator("#signals").screenshot(path=str(artifacts / "12-case-evidence-patterns.png"))
    pg.locator("#related").screenshot(path=str(artifacts / "13-case-related.png"))
    # printed, the case file has no navigation or forms and every pattern open
    pg.emulate_media(media="print")
    assert not pg.locator("header.top").is_visible()
    assert not pg.locator("#workflow").is_visible()
    pg.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert pg.locator("details.rule:not([open])").count() == 0
    pg.pdf(path=str(artifacts / "14-case-file.pdf"))
    pg.screenshot(path=str(artifacts / "14-case-print.png"), full_page=True)
    pg.emulate_media(media="screen")
    assert pg.problems == [], pg.problems


def test_account_page_and_search_in_the_browser(page, server, store, artifacts):  # noqa: F811
    pg = page
    case_id = top_case(store)
    with store.session() as s:
        d = case_detail(s, case_id)
    account = d["accounts"][0]
    sign_in(pg, "ivy")
    pg.goto(f"/cases/{case_id}")
    pg.click(f"#accounts-table a[href='/accounts/{account['account_id']}']")
    pg.wait_for_url(re.compile(rf"/accounts/{re.escape(account['account_id'])}$"))
    assert pg.inner_text("#account-title") == f"Account {account['account_id']}"
    assert pg.locator(f"#account-cases a[href='/cases/{case_id}']").count() == 1
    pg.screenshot(path=str(artifacts / "15-account-page.png"), full_page=True)
    pg.fill("header .header-search input[name=q]", account["account_id"])
    pg.click("header .header-search button")
    pg.wait_for_url(re.compile(r"/search\?q="))
    assert pg.locator(f"#found-accounts a[href='/accounts/{account['account_id']}']").count() == 1
    pg.screenshot(path=str(artifacts / "16-search.png"))
    assert pg.problems == [], pg.problems
