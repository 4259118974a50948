"""The case app over HTTP (FastAPI's TestClient) against a real SQLite case store loaded from a
real pipeline run: one test per security property, then the pages and the workflow."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from postgres import postgres_server  # noqa: F401  (a session fixture: a throwaway PostgreSQL)
from sqlalchemy import func, select, update
from test_web_support import (
    SECRET,
    USERS,
    csrf_of,
    demo_run,
    loaded_store,
    login,
    post_form,
    top_case,
)

from flows87.investigate.store import audit_entries, case_detail, get_case, list_cases
from flows87.investigate.store.models import AuditEntry, Case, CaseAccount, Note
from flows87.investigate.web import WebSettings, create_app
from flows87.investigate.web.app import csrf_protect, current_user
from flows87.investigate.web.security import safe_next

with warnings.catch_warnings():  # "install httpx2 instead": the TestClient works as it is
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return demo_run(tmp_path_factory)


@pytest.fixture(scope="module")
def store(run_dir, tmp_path_factory):
    db = tmp_path_factory.mktemp("web-store") / "cases.db"
    s = loaded_store(f"sqlite:///{db}", run_dir)
    yield s
    s.dispose()


def settings(**kw) -> WebSettings:
    return WebSettings(secret_key=SECRET, **kw)


@pytest.fixture(scope="module")
def app(store):
    return create_app(store, settings())


def client_for(app, name: str | None = None) -> TestClient:
    c = TestClient(app)
    if name:
        r = login(c, name)
        assert r.status_code == 303, r.text
    return c


def case_ids(store, n: int = 10) -> list[str]:
    with store.session() as s:
        return [c["case_id"] for c in list_cases(s, page_size=n).items]


def status_of(store, case_id: str) -> str:
    with store.session() as s:
        return get_case(s, case_id).status


def audit_count(store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


# --- authentication and roles ----------------------------------------------------------------


def test_every_route_needs_a_signed_in_user_and_every_post_a_csrf_token(app):
    """Structural: each route but the login page and health check depends on current_user
    (directly or through a role requirement); each POST on csrf_protect."""

    def calls(dependant) -> set:
        out = {dependant.call}
        for d in dependant.dependencies:
            out |= calls(d)
        return out

    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 15
    for r in routes:
        deps = calls(r.dependant)
        if r.path in ("/login", "/healthz"):
            continue
        assert current_user in deps, f"{r.path} does not require a signed-in user"
    for r in routes:
        if "POST" in r.methods:
            assert csrf_protect in calls(r.dependant), f"POST {r.path} has no CSRF check"


def test_unauthenticated_requests_see_nothing(app, store):
    case_id = top_case(store)
    c = client_for(app)
    for path in ["/", "/cases", f"/cases/{case_id}", "/audit", "/admin/users", "/cases?status=new"]:
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next="), path
        assert case_id not in r.text
    r = c.get(f"/cases/{case_id}/graph", follow_redirects=False)
    assert r.status_code == 401
    assert "nodes" not in r.text
    before = audit_count(store)
    for path, data in [
        (f"/cases/{case_id}/assign", {"assignee": "ivy"}),
        (f"/cases/{case_id}/status", {"status": "in_review"}),
        (f"/cases/{case_id}/close", {"disposition": "false_positive", "reason": "x"}),
        (f"/cases/{case_id}/export/csv", {}),
        ("/admin/users", {"username": "eve", "role": "admin", "password": "eve-password"}),
    ]:
        r = c.post(path, data=data, follow_redirects=False)
        assert r.status_code in (303, 403), path
        assert r.status_code != 200
    assert status_of(store, case_id) == "new"
    assert audit_count(store) == before
    # the login redirect comes back to the page asked for, and never to another site
    r = c.get(f"/cases/{case_id}", follow_redirects=False)
    assert r.headers["location"] == f"/login?next=%2Fcases%2F{case_id}"
    for bad in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
    ]:
        assert safe_next(bad) == "/cases"
    r = login(c, "ivy")
    assert r.headers["location"] == "/cases"
    c2 = TestClient(app)
    page = c2.get("/login?next=//evil.example/")
    r = c2.post(
        "/login",
        data={
            "username": "ivy",
            "password": USERS["ivy"][1],
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/cases"


def test_wrong_password_and_unknown_user_are_refused_alike(app):
    c = client_for(app)
    a = login(c, "ian", "not-the-password")
    b = login(c, "nobody-here", "not-the-password")
    assert a.status_code == b.status_code == 401
    assert "Wrong user name or password" in a.text and "Wrong user name or password" in b.text
    assert c.get("/cases", follow_redirects=False).status_code == 303


def test_investigator_cannot_approve_a_report(app, store):
    case_id = case_ids(store)[1]
    ivy, ian, sam = client_for(app, "ivy"), client_for(app, "ian"), client_for(app, "sam")
    assert post_form(ivy, f"/cases/{case_id}/status", {"status": "in_review"}).status_code == 303
    r = post_form(
        ivy,
        f"/cases/{case_id}/close",
        {"disposition": "reported", "reason": "STR filed: wage recapture"},
    )
    assert r.status_code == 303
    with store.session() as s:
        assert get_case(s, case_id).status == "in_review"
    # the approval form is not offered to investigators, and posting it anyway is refused
    assert 'id="approval-form"' not in ivy.get(f"/cases/{case_id}").text
    for who in (ivy, ian):
        r = post_form(who, f"/cases/{case_id}/approval", {"decision": "approve"})
        assert r.status_code == 403
        assert "supervisor" in r.text
    assert status_of(store, case_id) == "in_review"
    # investigators cannot reopen, manage users or verify the audit chain either
    assert ivy.get("/admin/users").status_code == 403
    assert ivy.get("/audit?verify=1").status_code == 403
    r = post_form(
        ivy,
        "/admin/users",
        {"username": "eve", "role": "admin", "password": "eve-password"},
        page="/cases",
    )
    assert r.status_code == 403
    # a supervisor approves: the case closes as reported
    assert 'id="approval-form"' in sam.get(f"/cases/{case_id}").text
    r = post_form(sam, f"/cases/{case_id}/approval", {"decision": "approve", "comment": "agreed"})
    assert r.status_code == 303
    with store.session() as s:
        case = get_case(s, case_id)
        assert (case.status, case.disposition) == ("closed", "reported")
    r = post_form(ivy, f"/cases/{case_id}/reopen", {"reason": "more evidence"})
    assert r.status_code == 403
    assert status_of(store, case_id) == "closed"


def test_investigator_cannot_work_someone_elses_case(app, store):
    case_id = case_ids(store)[2]
    ivy, ian = client_for(app, "ivy"), client_for(app, "ian")
    assert post_form(ivy, f"/cases/{case_id}/assign", {"assignee": "me"}).status_code == 303
    r = post_form(ian, f"/cases/{case_id}/status", {"status": "in_review"})
    assert r.status_code == 403
    r = post_form(ian, f"/cases/{case_id}/assign", {"assignee": "ian"})
    assert r.status_code == 403
    assert status_of(store, case_id) == "new"


# --- CSRF ------------------------------------------------------------------------------------


def test_post_without_csrf_token_is_refused(app, store):
    case_id = case_ids(store)[3]
    c = client_for(app, "sam")
    r = c.post(f"/cases/{case_id}/comment", data={"body": "no token"}, follow_redirects=False)
    assert r.status_code == 403
    assert "security token" in r.text
    r = c.post(f"/cases/{case_id}/status", data={"status": "in_review"}, follow_redirects=False)
    assert r.status_code == 403
    assert status_of(store, case_id) == "new"
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Note).where(Note.case_id == case_id)) == 0
    # the login form has one too (no login CSRF)
    r = TestClient(app).post(
        "/login", data={"username": "sam", "password": USERS["sam"][1]}, follow_redirects=False
    )
    assert r.status_code == 403


def test_post_with_wrong_or_foreign_csrf_token_is_refused(app, store):
    case_id = case_ids(store)[3]
    sam, sue = client_for(app, "sam"), client_for(app, "sue")
    sues_token = csrf_of(sue.get("/cases").text)
    for token in ["", "x" * 43, sues_token, csrf_of(sam.get("/cases").text) + "x"]:
        r = sam.post(
            f"/cases/{case_id}/comment",
            data={"body": "bad token", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 403, token
    # the right token from another site's page (a cross-site Origin) is refused too
    token = csrf_of(sam.get(f"/cases/{case_id}").text)
    r = sam.post(
        f"/cases/{case_id}/comment",
        data={"body": "cross-site", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Note).where(Note.case_id == case_id)) == 0
    # and the right token from the same site works
    r = sam.post(
        f"/cases/{case_id}/comment",
        data={"body": "looked at the payroll", "csrf_token": token},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "looked at the payroll" in sam.get(f"/cases/{case_id}").text
    # a new session after signing in gets a new token: the old one stops working
    old = csrf_of(sam.get("/cases").text)
    login(sam, "sam")
    r = sam.post(
        f"/cases/{case_id}/comment",
        data={"body": "stale", "csrf_token": old},
        follow_redirects=False,
    )
    assert r.status_code == 403


# --- login rate limiting ---------------------------------------------------------------------


def test_login_is_rate_limited_per_user_and_address(store):
    app = create_app(store, settings(login_failures=5, login_window=900))
    c = TestClient(app)
    for _ in range(5):
        assert login(c, "ian", "wrong-password").status_code == 401
    # the sixth attempt is refused before the password is checked, even the right one
    r = login(c, "ian")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 800
    assert "Too many failed sign-ins" in r.text
    assert c.get("/cases", follow_redirects=False).status_code == 303
    # another user from the same address is not locked out
    assert login(TestClient(app), "sue").status_code == 303
    # nor is the same user from another address
    other = TestClient(app, client=("10.9.8.7", 50000))
    assert login(other, "ian").status_code == 303
    with store.session() as s:
        actions = [
            e["action"] for e in audit_entries(s, entity_type="user", entity_id="ian", limit=20)
        ]
    assert actions.count("auth.login_failed") >= 5
    assert "auth.login_blocked" in actions


def test_login_rate_limit_per_address_for_many_user_names(store):
    app = create_app(store, settings(login_failures=2, login_window=900))
    c = TestClient(app)
    for i in range(20):  # 2 x 10 failures from one address over many user names
        assert login(c, f"guess{i}", "wrong-password").status_code == 401
    assert login(c, "sam").status_code == 429


# --- output escaping -------------------------------------------------------------------------


def test_hostile_account_name_and_note_show_as_text(app, store):
    case_id = case_ids(store)[4]
    with store.session() as s:
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
    c = client_for(app, "sam")
    assert post_form(c, f"/cases/{case_id}/comment", {"body": HOSTILE}).status_code == 303
    page = c.get(f"/cases/{case_id}").text
    assert HOSTILE not in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert (
        "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        in page
    )
    # the only script on the page is the app's own file
    assert re.findall(r"<script[^>]*>", page) == [
        re.search(r'<script src="/static/graph\.js[^"]*" defer>', page).group(0)
    ]
    # the graph data is JSON, not HTML (and nosniff stops a browser guessing otherwise)
    r = c.get(f"/cases/{case_id}/graph")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    names = [n["name"] for n in r.json()["nodes"]]
    assert HOSTILE in names
    # the audit log page escapes what it shows too
    audit = c.get(f"/audit?case={case_id}").text
    assert "<script>alert" not in audit and "&lt;script&gt;" in audit
    # a hostile search term is echoed as text
    q = c.get("/cases", params={"q": '"><script>alert(2)</script>'}).text
    assert "<script>alert(2)" not in q and "&#34;&gt;&lt;script&gt;alert(2)" in q


# --- cookies and headers ---------------------------------------------------------------------


def _set_cookie(r) -> str:
    cookies = r.headers.get_list("set-cookie")
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_session_cookie_flags(store):
    c = TestClient(create_app(store, settings(session_idle=1200)))
    r = login(c, "ivy")
    cookie = _set_cookie(r)
    assert cookie.startswith("flows87_session=")
    flags = [p.strip().lower() for p in cookie.split(";")[1:]]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "max-age=1200" in flags
    assert "secure" not in flags
    # behind HTTPS: Secure, a __Host- name, SameSite=Strict when asked, and HSTS
    https = TestClient(
        create_app(store, settings(secure_cookies=True, same_site="strict")),
        base_url="https://testserver",
    )
    r = login(https, "ivy")
    cookie = _set_cookie(r)
    flags = [p.strip().lower() for p in cookie.split(";")[1:]]
    assert cookie.startswith("__Host-flows87=")
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= set(flags)
    assert not any(f.startswith("domain=") for f in flags)
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert https.get("/cases").status_code == 200
    # the cookie is signed: a forged one is ignored
    forged = TestClient(create_app(store, settings()))
    forged.cookies.set("flows87_session", "eyJ1aWQiOiAxfQ==.forged.signature")
    assert forged.get("/cases", follow_redirects=False).status_code == 303


def test_security_headers_on_every_response(app, store):
    c = client_for(app, "ivy")
    case_id = top_case(store)
    for path in [
        "/login",
        "/cases",
        f"/cases/{case_id}",
        f"/cases/{case_id}/graph",
        "/static/graph.js",
        "/no-such-page",
        "/audit",
    ]:
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert "object-src 'none'" in csp, path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "same-origin", path
        if not path.startswith("/static"):
            assert r.headers["cache-control"] == "no-store", path
    # no inline scripts, event handlers or style attributes in the pages (the CSP forbids them)
    for path in ["/login", "/cases", f"/cases/{case_id}", "/audit"]:
        html = c.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"<[a-zA-Z][^>]*\son[a-z]+\s*=", html), path
        assert not re.search(r"<[a-zA-Z][^>]*\sstyle\s*=", html), path


def test_unknown_host_header_is_refused(store):
    from flows87.investigate.web.server import make_settings

    s = make_settings("127.0.0.1", secret_key=SECRET)
    app = create_app(store, s)
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/login").status_code == 200
    assert TestClient(app, base_url="http://localhost:8000").get("/login").status_code == 200
    assert TestClient(app, base_url="http://rebind.evil.example").get("/login").status_code == 400


def test_logout_ends_the_session_even_for_a_copied_cookie(app):
    c = client_for(app, "ivy")
    stolen = dict(c.cookies)
    r = post_form(c, "/logout", page="/cases")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert c.get("/cases", follow_redirects=False).status_code == 303
    replay = TestClient(app)
    for k, v in stolen.items():
        replay.cookies.set(k, v)
    assert replay.get("/cases", follow_redirects=False).status_code == 303


def test_password_change_and_deactivation_end_sessions(store):
    app = create_app(store, settings())
    ian, ada = client_for(app, "ian"), client_for(app, "ada")
    assert ian.get("/cases").status_code == 200
    r = post_form(ada, "/admin/users/ian", {"password": "ian-new-password"}, page="/admin/users")
    assert r.status_code == 303
    assert ian.get("/cases", follow_redirects=False).status_code == 303
    ian = TestClient(app)
    assert login(ian, "ian", "ian-new-password").status_code == 303
    assert (
        post_form(ada, "/admin/users/ian", {"active": "0"}, page="/admin/users").status_code == 303
    )
    assert ian.get("/cases", follow_redirects=False).status_code == 303
    assert login(TestClient(app), "ian", "ian-new-password").status_code == 401
    assert (
        post_form(ada, "/admin/users/ian", {"active": "1"}, page="/admin/users").status_code == 303
    )
    assert (
        post_form(
            ada, "/admin/users/ian", {"password": USERS["ian"][1]}, page="/admin/users"
        ).status_code
        == 303
    )


def test_session_expires_after_its_absolute_lifetime(store, monkeypatch):
    import flows87.investigate.web.app as web_app

    app = create_app(store, settings(session_max=3600))
    c = client_for(app, "ivy")
    assert c.get("/cases").status_code == 200
    later = time.time() + 3601

    class Clock:
        @staticmethod
        def time() -> float:
            return later

    monkeypatch.setattr(web_app, "time", Clock)
    assert c.get("/cases", follow_redirects=False).status_code == 303


# --- SQL injection ---------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "x'; DROP TABLE cases; --",
    '" OR ""="',
    "1) OR (1=1",
    "%' OR case_id LIKE '%",
    "C-%",
    "_",
]


def test_no_sql_injection_through_filters(app, store):
    c = client_for(app, "sam")
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(Case))
    for bad in INJECTIONS:
        for key in ["q", "typology", "assignee", "account", "disposition"]:
            r = c.get("/cases", params={key: bad})
            assert r.status_code in (200, 400), (key, bad, r.status_code)
            if r.status_code == 200:
                assert "No case matches these filters." in r.text, (key, bad)
        for key in ["sort", "status", "date_field", "date_from", "min_risk"]:
            r = c.get("/cases", params={key: bad})
            assert r.status_code == 400, (key, bad, r.status_code)
        r = c.get("/audit", params={"case": bad, "actor": bad})
        assert r.status_code == 200 and "No entries." in r.text
        assert c.get(f"/cases/{bad}").status_code in (404, 400)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == total


# --- pages -----------------------------------------------------------------------------------


def test_queue_filters_sorts_and_pages(app, store):
    c = client_for(app, "sam")
    with store.session() as s:
        everything = list_cases(s, page_size=500)
    ids = [x["case_id"] for x in everything.items]
    row = re.compile(r'class="case-link" href="/cases/([^"]+)"')
    first = row.findall(c.get("/cases?page_size=5").text)
    second = row.findall(c.get("/cases?page_size=5&page=2").text)
    assert first == ids[:5] and second == ids[5:10]
    assert "page 2 of" in c.get("/cases?page_size=5&page=2").text
    asc = row.findall(c.get("/cases?sort=risk&page_size=200").text)
    # ascending risk: equal scores in reverse pipeline rank (the mirror of the default order)
    assert asc == [
        x["case_id"]
        for x in sorted(
            everything.items, key=lambda x: (x["risk_score"], -(x["rank"] or 0), x["case_id"])
        )
    ]
    typology = everything.items[0]["typologies"][0]
    got = row.findall(c.get("/cases", params={"typology": typology, "page_size": 200}).text)
    assert got and set(got) == {
        x["case_id"] for x in everything.items if typology in x["typologies"]
    }
    got = row.findall(c.get("/cases", params={"min_risk": 0.9, "page_size": 200}).text)
    assert set(got) == {x["case_id"] for x in everything.items if x["risk_score"] >= 0.9}
    got = row.findall(c.get("/cases", params={"status": "new", "page_size": 200}).text)
    assert set(got) == {x["case_id"] for x in everything.items if x["status"] == "new"}
    got = row.findall(c.get("/cases", params={"assignee": "-", "page_size": 200}).text)
    assert set(got) == {x["case_id"] for x in everything.items if x["assignee"] is None}
    day = everything.items[0]["first_ts"].date().isoformat()
    got = row.findall(
        c.get("/cases", params={"date_from": day, "date_to": day, "page_size": 200}).text
    )
    assert everything.items[0]["case_id"] in got
    assert c.get("/cases", params={"date_from": "2026-13-45"}).status_code == 400
    # column headers sort, keeping the filters
    page = c.get("/cases?status=new").text
    assert 'href="/cases?status=new&amp;sort=-amount"' in page


def test_case_page_shows_summary_risk_signals_rules_transactions_and_timeline(app, store):
    case_id = top_case(store)
    c = client_for(app, "ivy")
    r = c.get(f"/cases/{case_id}")
    assert r.status_code == 200
    page = r.text
    with store.session() as s:
        d = case_detail(s, case_id)
    assert d["case"]["headline"] in page.replace("&#39;", "'")
    for section in [
        "summary",
        "risk",
        "graph-section",
        "timeline",
        "signals",
        "accounts",
        "transactions",
        "notes",
        "history",
        "workflow",
    ]:
        assert f'id="{section}"' in page, section
    for sig in d["signals"]:
        assert f'id="rule-{sig["signal_id"]}"' in page
        if sig["rule"]:
            assert (sig["rule"]["title"].replace("&", "&amp;").replace("'", "&#39;")) in page
            for ref in sig["rule"]["references"]:
                assert ref.replace("&", "&amp;").replace("'", "&#39;").replace('"', "&#34;") in page
    txn_rows = re.findall(r"<tr><td class=\"small\">", page.split('id="transactions-table"')[1])
    assert len(txn_rows) == min(len(d["transactions"]), 1000)
    assert page.count('<circle class="txn') == len(
        [t for t in d["transactions"] if t["ts"] is not None]
    )
    graph = c.get(f"/cases/{case_id}/graph").json()
    assert graph["nodes"] and graph["edges"]
    assert {a["account_id"] for a in d["accounts"]} <= {n["id"] for n in graph["nodes"]}
    assert c.get("/cases/C-does-not-exist").status_code == 404


def test_workflow_close_needs_a_reason_and_lands_in_the_audit_log(app, store):
    case_id = case_ids(store)[5]
    c = client_for(app, "ivy")
    assert post_form(c, f"/cases/{case_id}/assign", {"assignee": "me"}).status_code == 303
    assert post_form(c, f"/cases/{case_id}/status", {"status": "in_review"}).status_code == 303
    r = post_form(c, f"/cases/{case_id}/close", {"disposition": "false_positive", "reason": "   "})
    assert r.status_code == 400 and "reason" in r.text
    r = post_form(c, f"/cases/{case_id}/close", {"disposition": "made_up", "reason": "because"})
    assert r.status_code == 400
    assert status_of(store, case_id) == "in_review"
    r = post_form(
        c,
        f"/cases/{case_id}/close",
        {"disposition": "false_positive", "reason": "payroll of a real farm"},
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert "Case closed as false positive." in page
    assert 'id="case-status">closed<' in page
    r = post_form(c, f"/cases/{case_id}/status", {"status": "in_review"})
    assert r.status_code == 409
    audit = c.get("/audit", params={"case": case_id}).text
    for action in ["case.assigned", "case.status.in_review", "case.closed"]:
        assert action in audit
    assert "payroll of a real farm" in audit
    assert ">ivy<" in audit
    # the decision feeds back: the case's rules show up in the rule outcomes
    with store.session() as s:
        signal_ids = {sg["signal_id"] for sg in case_detail(s, case_id)["signals"]}
    outcomes = c.get("/outcomes").text
    for sid in signal_ids:
        assert f"<code>{sid}</code>" in outcomes


def test_supervisor_verifies_the_audit_chain(app):
    c = client_for(app, "sue")
    page = c.get("/audit?verify=1").text
    assert 'id="chain-status"' in page and "is intact" in page
    # supervisors also see sign-ins; investigators only the cases' history
    assert "auth.login" in page
    assert "auth.login" not in client_for(app, "ivy").get("/audit").text


def test_exports_goaml_xml_and_csv(app, store):
    case_id = top_case(store)
    c = client_for(app, "ivy")
    r = post_form(c, f"/cases/{case_id}/export/csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert f'filename="{case_id}-transactions.csv"' in r.headers["content-disposition"]
    lines = r.text.strip().splitlines()
    assert lines[0].startswith("case_id,txn_id")
    r = post_form(c, f"/cases/{case_id}/export/goaml")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml")
    from lxml import etree

    root = etree.fromstring(r.content)
    assert root.tag == "report"
    assert root.find("transaction/t_from") is not None
    assert r.headers["x-content-type-options"] == "nosniff"
    with store.session() as s:
        actions = [e["action"] for e in audit_entries(s, entity_type="case", entity_id=case_id)]
    assert "case.exported_goaml" in actions and "case.exported_csv" in actions
    # exports are POSTs with the CSRF token: a link or an image on another site cannot trigger one
    assert c.get(f"/cases/{case_id}/export/csv").status_code == 405
    assert c.post(f"/cases/{case_id}/export/csv", follow_redirects=False).status_code == 403


def test_admin_adds_a_user_who_can_sign_in(app):
    ada = client_for(app, "ada")
    r = post_form(
        ada,
        "/admin/users",
        {"username": "nia", "role": "investigator", "password": "nia-password"},
        page="/admin/users",
    )
    assert r.status_code == 303
    assert "nia" in ada.get("/admin/users").text
    assert login(TestClient(app), "nia", "nia-password").status_code == 303
    r = post_form(
        ada,
        "/admin/users",
        {"username": "<b>x</b>", "role": "investigator", "password": "xx-password"},
        page="/admin/users",
    )
    assert r.status_code == 400


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_review_and_report_on_each_backend(backend, run_dir, tmp_path, request):
    """The whole review over HTTP on SQLite and on a real PostgreSQL server."""
    if backend == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'cases.db'}", None
    else:
        server = request.getfixturevalue("postgres_server")
        name = server.new_database()
        url, drop = server.url(name), (lambda: server.drop_database(name))
    store = loaded_store(url, run_dir)
    try:
        app = create_app(store, settings())
        case_id = top_case(store)
        ivy, sam, sue = client_for(app, "ivy"), client_for(app, "sam"), client_for(app, "sue")
        assert post_form(sam, f"/cases/{case_id}/assign", {"assignee": "ivy"}).status_code == 303
        assert (
            post_form(ivy, f"/cases/{case_id}/status", {"status": "in_review"}).status_code == 303
        )
        assert (
            post_form(ivy, f"/cases/{case_id}/status", {"status": "escalated"}).status_code == 303
        )
        assert (
            post_form(
                sam,
                f"/cases/{case_id}/close",
                {"disposition": "reported", "reason": "forced labour payroll"},
            ).status_code
            == 303
        )
        assert (
            post_form(sam, f"/cases/{case_id}/approval", {"decision": "approve"}).status_code == 403
        )  # four eyes
        assert "awaiting approval" in sue.get("/cases?awaiting=1").text.lower()
        assert (
            post_form(sue, f"/cases/{case_id}/approval", {"decision": "approve"}).status_code == 303
        )
        with store.session() as s:
            case = get_case(s, case_id)
            assert (case.status, case.disposition) == ("closed", "reported")
        assert "is intact" in sue.get("/audit?verify=1").text
    finally:
        store.dispose()
        if drop:
            drop()


# --- flows87 serve ---------------------------------------------------------------------------


def test_flows87_serve_listens_on_loopback(store, tmp_path):
    from flows87.investigate.web.server import free_port

    port = free_port()
    env = dict(os.environ, FLOWS87_SECRET_KEY=SECRET, MPLCONFIGDIR=str(tmp_path))
    url = store.engine.url.render_as_string(hide_password=False)
    cmd = [
        sys.executable,
        "-m",
        "flows87.cli",
        "serve",
        "--port",
        str(port),
        "--db",
        url,
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"flows87 serve did not start: {proc.communicate()[1][-2000:]}"
                    ) from None
                time.sleep(0.2)
        assert r.status_code == 200 and "Sign in" in r.text
        assert (
            httpx.get(f"http://127.0.0.1:{port}/cases", follow_redirects=False).status_code == 303
        )
        assert "server" not in {k.lower() for k in r.headers}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    from flows87.cli import serve_cmd

    host = next(p for p in serve_cmd.params if p.name == "host")
    assert host.default == "127.0.0.1"


def test_graph_script_is_served_and_has_no_remote_sources():
    root = Path(__file__).resolve().parents[1] / "flows87" / "investigate" / "web"
    for f in list((root / "static").iterdir()) + list((root / "templates").iterdir()):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f
        assert "innerHTML" not in text and "eval(" not in text, f


def test_login_limiter_counts_parallel_attempts_atomically():
    import threading

    from flows87.investigate.web.security import LoginLimiter

    limiter = LoginLimiter(limit=5, window=900)
    key = ("user", "ian", "127.0.0.1")
    results: list[float] = []
    barrier = threading.Barrier(20)

    def attempt() -> None:
        barrier.wait()
        results.append(limiter.take([(key, 5)]))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for w in results if w == 0) == 5
    limiter.reset(key)
    assert limiter.take([(key, 5)]) == 0
