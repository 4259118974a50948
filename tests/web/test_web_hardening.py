"""The case app against hostile input and a hostile network: output escaped, cookie flags and
security headers, no SQL injection through the filters, no remote scripts; request bodies over
the limit, control characters, and the idle timeout that rolls while someone reads."""

from __future__ import annotations

import re
import time
from pathlib import Path

from sqlalchemy import func, select, update
from web_client import (
    HOSTILE,
    SECRET,
    USERS,
    TestClient,
    audit_count,
    case_ids,
    client_for,
    csrf_of,
    loaded_store,
    login,
    post_form,
    settings,
    top_case,
)

from flows87.investigate.store.models import Case, CaseAccount
from flows87.investigate.web import create_app


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
    # the only scripts on the page are the app's own files (the graph's among them)
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts and all(
        re.fullmatch(r'<script src="/static/[a-z_]+\.js\?v=[^"]+" defer>', t) for t in scripts
    ), scripts
    assert any("/static/graph.js" in t for t in scripts)
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


def test_graph_script_is_served_and_has_no_remote_sources():
    root = Path(__file__).resolve().parents[2] / "flows87" / "investigate" / "web"
    for f in list((root / "static").iterdir()) + list((root / "templates").iterdir()):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f
        assert "innerHTML" not in text and "eval(" not in text, f


def test_request_bodies_over_the_limit_are_refused_before_parsing(app, store):
    c = client_for(app, "sam")
    case_id = top_case(store)
    notes = audit_count(store)
    big = "x" * 1_100_000
    r = post_form(c, f"/cases/{case_id}/comment", {"body": big})
    assert r.status_code == 413
    assert "at most 1 MB" in r.text and "nothing was saved" in r.text
    assert r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    # a body without a declared length (chunked) is measured as it arrives
    token = csrf_of(c.get(f"/cases/{case_id}").text)

    def chunks():
        yield f"csrf_token={token}&body=".encode()
        for _ in range(40):
            yield b"y" * 50_000

    r = c.post(f"/cases/{case_id}/comment", content=chunks(), follow_redirects=False)
    assert r.status_code == 413
    # ... and one under the limit goes through, chunked or not
    r = c.post(
        f"/cases/{case_id}/comment",
        content=iter([f"csrf_token={token}&body=".encode(), b"a chunked note"]),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert post_form(c, f"/cases/{case_id}/comment", {"body": "z" * 9000}).status_code == 303
    assert audit_count(store) == notes + 2


def test_idle_timeout_rolls_while_someone_reads(store):
    """A reader who keeps opening pages stays signed in past the idle timeout; one who stops
    is signed out after it (short timeouts: 4 s idle, refreshed every second)."""
    app = create_app(store, settings(session_idle=4))
    c = client_for(app, "ivy")
    start = time.monotonic()
    while time.monotonic() - start < 9:
        assert c.get("/cases", follow_redirects=False).status_code == 200
        time.sleep(0.5)
    time.sleep(5)
    assert c.get("/cases", follow_redirects=False).status_code == 303


def test_an_idle_session_is_refused_by_the_store_even_with_a_fresh_cookie(store):
    app = create_app(store, settings(session_idle=600))
    c = client_for(app, "ivy")
    assert c.get("/cases", follow_redirects=False).status_code == 200
    later = time.time() + 601
    app.state.clock = lambda: later
    assert c.get("/cases", follow_redirects=False).status_code == 303


BAD_NOTES = ["nul \x00 in it", "escape \x1b[2J", "bell\x07", "form feed \x0c"]


def test_control_characters_in_a_note_are_refused_with_a_message(app, store):
    case_id = case_ids(store)[3]
    c = client_for(app, "sam")
    before = audit_count(store)
    for body in BAD_NOTES:
        r = post_form(c, f"/cases/{case_id}/comment", {"body": body})
        assert r.status_code == 400, (body, r.status_code)
        assert "control character (U+00" in r.text and "remove it" in r.text
    assert audit_count(store) == before
    # tabs and line breaks are text
    r = post_form(c, f"/cases/{case_id}/comment", {"body": "line one\r\n\tline two"})
    assert r.status_code == 303
    # nor in an address
    assert c.get("/cases", params={"q": "a\x00b"}).status_code == 400
    assert c.get(f"/cases/C-%00{case_id}").status_code == 400


def test_control_characters_never_give_a_500_on_postgresql(run_dir, postgres_server, monkeypatch):
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", "audit-key-of-the-hardening-tests-0123456789")
    name = postgres_server.new_database()
    pg = loaded_store(postgres_server.url(name), run_dir)
    try:
        app = create_app(pg, settings())
        c = client_for(app, "sam")
        case_id = case_ids(pg)[0]
        for body in BAD_NOTES:
            assert post_form(c, f"/cases/{case_id}/comment", {"body": body}).status_code == 400
        for key in ("q", "account", "assignee"):
            assert c.get("/cases", params={key: "x\x00y"}).status_code == 400
        assert post_form(c, f"/cases/{case_id}/comment", {"body": "fine"}).status_code == 303
    finally:
        pg.dispose()
        postgres_server.drop_database(name)
