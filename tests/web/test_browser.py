"""The case app in headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser
download): sign in, open the top case, see the money graph drawn, close the case with a reason
and find that in the audit log page. Screenshots go to test-artifacts/browser/ (or
$FLOWS87_TEST_ARTIFACTS/browser/).

Without Chromium (scripts/system-deps.sh installs it) these tests skip, or fail when
FLOWS87_REQUIRE_BROWSER=1 (CI sets it)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update
from web_client import SECRET, USERS, top_case

from flows87.investigate.store import case_graph, get_case, list_cases
from flows87.investigate.store.models import CaseAccount
from flows87.investigate.web import WebSettings
from flows87.investigate.web.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[2]
REQUIRE = "FLOWS87_REQUIRE_BROWSER"
CHROMIUM = os.environ.get("FLOWS87_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("FLOWS87_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "browser"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
REASON = "Browser test: the payroll belongs to a licensed farm; wages stay with the workers."


def unavailable(reason: str) -> None:
    message = f"browser tests need Chromium: {reason}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(
            f"{message} ({REQUIRE}=1 requires it; run scripts/system-deps.sh)", pytrace=False
        )
    pytest.skip(f"{message} (run scripts/system-deps.sh)")


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is a dev dependency
        unavailable(f"the playwright package is missing ({exc})")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=30_000)
        except Exception as exc:
            unavailable(f"{CHROMIUM} did not start: {exc}")
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(store, browser):
    settings = WebSettings(secret_key=SECRET, allowed_hosts=["127.0.0.1"])
    with BackgroundServer(store, settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def artifacts():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=server.url)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    problems: list[str] = []
    pg.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    pg.problems = problems
    yield pg
    context.close()


def sign_in(pg, name: str) -> None:
    pg.goto("/cases")
    assert "/login" in pg.url  # not signed in yet
    pg.fill("input[name=username]", name)
    pg.fill("input[name=password]", USERS[name][1])
    pg.click("form[action='/login'] button[type=submit]")
    pg.wait_for_url(re.compile(r"/cases$"))


def test_review_top_case_in_the_browser(page, server, store, artifacts):
    pg = page
    sign_in(pg, "ivy")
    pg.screenshot(path=str(artifacts / "01-queue.png"))

    # the top of the queue is the riskiest case
    case_id = top_case(store)
    first = pg.locator("a.case-link").first
    assert first.inner_text() == case_id
    first.click()
    pg.wait_for_url(re.compile(rf"/cases/{case_id}$"))
    assert pg.inner_text("#case-title") == f"Case {case_id}"

    # the money graph is drawn: one circle per account, one arrow per account pair
    pg.wait_for_selector("#money-graph[data-ready='1']")
    with store.session() as s:
        graph = case_graph(s, case_id)
    nodes = pg.locator("#graph-svg circle.node")
    edges = pg.locator("#graph-svg line.edge")
    assert nodes.count() == len(graph["nodes"]) > 0
    assert edges.count() == len(graph["edges"]) > 0
    box = pg.locator("#graph-svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300
    assert pg.locator("#graph-svg circle.node.anchor").count() >= 1
    # nodes are laid out (not all on one spot) and sized by flow
    xs = {nodes.nth(i).get_attribute("cx") for i in range(min(nodes.count(), 40))}
    assert len(xs) > 5
    radii = {float(nodes.nth(i).get_attribute("r")) for i in range(nodes.count())}
    assert len(radii) > 1
    pg.locator("#graph-section").scroll_into_view_if_needed()
    pg.screenshot(path=str(artifacts / "02-case-graph.png"))

    # clicking an account shows its details
    anchor = pg.locator("#graph-svg circle.node.anchor").first
    anchor_id = anchor.get_attribute("data-id")
    anchor.click()
    assert pg.inner_text("#graph-details-title") == anchor_id
    assert "Money out" in pg.inner_text("#graph-details") or "Money in" in pg.inner_text(
        "#graph-details"
    )
    assert "selected" in (anchor.get_attribute("class") or "")
    pg.locator("#graph-section").screenshot(path=str(artifacts / "03-graph-account-details.png"))

    # hiding the counterparties redraws the case accounts only
    members = sum(1 for n in graph["nodes"] if n["in_case"])
    pg.uncheck("#graph-counterparties")
    pg.wait_for_function(
        f"document.querySelectorAll('#graph-svg circle.node').length === {members}"
    )
    pg.check("#graph-counterparties")
    pg.wait_for_function(
        f"document.querySelectorAll('#graph-svg circle.node').length === {len(graph['nodes'])}"
    )

    # take the case, start the review, close it with a reason
    pg.click("#assign-form button[type=submit]")
    pg.wait_for_selector("p.flash.ok")
    assert pg.inner_text("#case-assignee") == "ivy"
    pg.click("#status-form button[value=in_review]")
    pg.wait_for_selector("#case-status.in_review")
    pg.select_option("#close-form select[name=disposition]", "false_positive")
    pg.fill("#close-form textarea[name=reason]", REASON)
    pg.click("#close-form button[type=submit]")
    pg.wait_for_selector("#case-status.closed")
    assert "Case closed as false positive." in pg.inner_text("main")
    assert REASON in pg.inner_text("#summary")
    pg.screenshot(path=str(artifacts / "04-case-closed.png"))
    with store.session() as s:
        case = get_case(s, case_id)
        assert (case.status, case.disposition, case.close_reason) == (
            "closed",
            "false_positive",
            REASON,
        )

    # the audit log page shows who closed it, when, and why
    pg.click("header nav a[href='/audit']")
    pg.wait_for_url(re.compile(r"/audit$"))
    row = pg.locator("#audit-table tbody tr", has_text="case.closed").filter(has_text=case_id).first
    assert row.count() == 1
    text = row.inner_text()
    assert "ivy" in text and REASON in text
    assert "status: in review → closed" in text  # the state before and after
    assert "disposition: — → false positive" in text
    row.scroll_into_view_if_needed()
    pg.screenshot(path=str(artifacts / "05-audit-log.png"))
    # and the case's own history filter finds the whole sequence
    pg.goto(f"/audit?case={case_id}")
    actions = pg.locator("#audit-table td.action").all_inner_texts()
    assert actions[:3] == ["case.closed", "case.status.in_review", "case.assigned"]

    assert pg.problems == [], pg.problems


def test_hostile_account_name_is_shown_as_text_in_the_browser(page, server, store, artifacts):
    pg = page
    with store.session() as s:
        case_id = list_cases(s, page_size=3).items[2]["case_id"]
        account = s.scalar(
            select(CaseAccount.account_id)
            .where(CaseAccount.case_id == case_id)
            .order_by(CaseAccount.position)
        )
        s.execute(
            update(CaseAccount)
            .where(CaseAccount.case_id == case_id, CaseAccount.account_id == account)
            .values(name=HOSTILE)
        )
    sign_in(pg, "sam")
    pg.goto(f"/cases/{case_id}")
    pg.wait_for_selector("#money-graph[data-ready='1']")
    assert HOSTILE in pg.locator("#accounts-table td.account-name").all_inner_texts()
    pg.locator(f"#graph-svg circle.node[data-id='{account}']").click()
    assert HOSTILE in pg.inner_text("#graph-details")
    # nothing ran: no dialog, no injected element
    assert pg.locator("img[src=x]").count() == 0
    assert pg.evaluate("document.scripts.length") == 3  # alive.js, graph.js and tables.js, ours
    pg.locator("#accounts").screenshot(path=str(artifacts / "06-hostile-name-as-text.png"))
    assert pg.problems == [], pg.problems
