"""The case app's sign-in and roles over HTTP: every route needs a signed-in user and every POST a
CSRF token, roles limit what each user may do, and logins are rate limited (per user and
address, per address, per account with back-off; counted in the store; X-Forwarded-For only
from trusted proxies; failures audited in bounded number)."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import delete, func, select
from web_client import (
    USERS,
    TestClient,
    audit_count,
    case_ids,
    client_for,
    csrf_of,
    login,
    post_form,
    settings,
    status_of,
    top_case,
)

from flows87.investigate.store import audit_entries, get_case
from flows87.investigate.store.models import Note
from flows87.investigate.store.shared_state import LoginCounter
from flows87.investigate.web import create_app
from flows87.investigate.web.app import csrf_protect, current_user
from flows87.investigate.web.security import safe_next


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


def failing(app, address: str) -> TestClient:
    """A client signing in from `address` (each test its own: the counters are in the store)."""
    return TestClient(app, client=(address, 50000))


def test_login_is_rate_limited_per_user_and_address(store):
    app = create_app(store, settings(login_failures=5, login_window=900))
    before = audit_count(store)
    c = failing(app, "10.1.0.1")
    for _ in range(5):
        assert login(c, "ian", "wrong-password").status_code == 401
    # the sixth attempt is refused before the password is checked, even the right one
    r = login(c, "ian")
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 800
    assert "Too many failed sign-ins" in r.text
    assert c.get("/cases", follow_redirects=False).status_code == 303
    # another user from the same address is not locked out
    assert login(failing(app, "10.1.0.1"), "sue").status_code == 303
    # nor is the same user from another address
    assert login(failing(app, "10.9.8.7"), "ian").status_code == 303
    # audited: the first failure of the window, the block (with its count), the sign-ins
    with store.session() as s:
        new = [e for e in audit_entries(s, limit=50) if e["seq"] > before]
    failed = [e for e in new if e["action"] == "auth.login_failed"]
    blocked = [e for e in new if e["action"] == "auth.login_blocked"]
    assert [(e["entity_id"], e["after"]["ip"]) for e in failed] == [("ian", "10.1.0.1")]
    assert [(e["after"]["scope"], e["after"]["failures"]) for e in blocked] == [("user", 5)]
    assert sorted(e["entity_id"] for e in new if e["action"] == "auth.login") == ["ian", "sue"]


def test_login_rate_limit_per_address_for_many_user_names(store):
    app = create_app(store, settings(login_failures=2, login_window=900))
    c = failing(app, "10.2.0.1")
    for i in range(20):  # 2 x 10 failures from one address over many user names
        assert login(c, f"guess{i}", "wrong-password").status_code == 401
    assert login(c, "sam").status_code == 429
    assert login(failing(app, "10.2.0.2"), "sam").status_code == 303


def test_failed_logins_do_not_grow_the_audit_log_without_bound(store):
    """Many failures from one address, on one name and on many, add a bounded number of audit
    entries: one per user and address per window, one per block; refusals are only counted."""
    app = create_app(store, settings(login_failures=3, login_window=900))
    before = audit_count(store)
    c = failing(app, "10.3.0.1")
    codes = [login(c, "nobody", "wrong-password").status_code for _ in range(40)]
    assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}
    assert audit_count(store) - before == 2  # the first failure, the block
    c = failing(app, "10.3.0.2")
    codes = [login(c, f"name{i}", "wrong-password").status_code for i in range(60)]
    assert codes.count(401) == 30 and set(codes[30:]) == {429}
    # 30 names' first failures and the address's block; nothing for the 30 refused
    assert audit_count(store) - before == 2 + 31
    with store.session() as s:
        refused = s.scalar(select(LoginCounter.refused).where(LoginCounter.key == "ip|10.3.0.2"))
    assert refused == 30


def test_account_backoff_blocks_the_account_from_every_address(app, store):
    """Failures on one account from many addresses (each under its per-address limit) block
    the account, for longer after each further failure."""
    app = create_app(store, settings(login_failures=5, account_failures=3, account_backoff=30))
    t = [1_900_000_000.0]
    app.state.clock = lambda: t[0]
    for i in range(3):
        assert login(failing(app, f"10.4.0.{i}"), "sue", "wrong-password").status_code == 401
    r = login(failing(app, "10.4.1.1"), "sue")  # the right password, from a new address
    assert r.status_code == 429 and 25 <= int(r.headers["retry-after"]) <= 30
    t[0] += 31
    assert login(failing(app, "10.4.0.9"), "sue", "wrong-password").status_code == 401
    r = login(failing(app, "10.4.1.1"), "sue")
    assert r.status_code == 429 and 55 <= int(r.headers["retry-after"]) <= 60  # doubled
    t[0] += 61
    assert login(failing(app, "10.4.1.1"), "sue").status_code == 303
    # a successful sign-in clears the account's count
    with store.session() as s:
        assert s.get(LoginCounter, "account|sue") is None


def test_login_limiter_counts_parallel_attempts_atomically(store):
    """Twenty attempts at once (each in its own write unit of work, as in twenty requests):
    exactly the limit go ahead."""
    import threading

    from flows87.investigate.web.security import LoginLimiter

    limiter = LoginLimiter(settings(login_failures=5, login_window=900))
    results: list[float] = []
    barrier = threading.Barrier(20)

    def attempt() -> None:
        barrier.wait()
        with store.session(write=True) as s:
            results.append(limiter.take(s, "ivy", "10.5.0.1", 1_900_000_000.0)[0])

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for w in results if w == 0) == 5
    with store.session(write=True) as s:
        limiter.succeeded(s, "ivy", "10.5.0.1")
        assert limiter.take(s, "ivy", "10.5.0.1", 1_900_000_000.0)[0] == 0


def test_login_counters_are_pruned_and_capped(store):
    from flows87.investigate.store.shared_state import Limit, prune_counters, take_attempt

    t0 = 1_800_000_000.0
    with store.session(write=True) as s:
        s.execute(delete(LoginCounter))  # the earlier tests' counters
        for i in range(50):
            take_attempt(s, [Limit(f"ip|10.6.0.{i}", 5, 900)], t0 + i)
    with store.session(write=True) as s:
        assert prune_counters(s, t0 + 100, 900, cap=10) == 40
        keys = set(s.scalars(select(LoginCounter.key).where(LoginCounter.key.like("ip|10.6.%"))))
        assert keys == {f"ip|10.6.0.{i}" for i in range(40, 50)}  # the newest kept
        assert prune_counters(s, t0 + 1000, 900) == 10  # quiet for a window: gone


def test_x_forwarded_for_only_from_trusted_proxies(store):
    from flows87.investigate.web.security import TrustedProxies

    proxies = TrustedProxies(["127.0.0.1", "10.10.0.0/16"])
    assert proxies.client("127.0.0.1", ["203.0.113.9"]) == "203.0.113.9"
    # a client cannot pose as another by sending its own header through the proxy
    assert proxies.client("127.0.0.1", ["1.2.3.4, 203.0.113.9"]) == "203.0.113.9"
    assert proxies.client("127.0.0.1", ["203.0.113.9, 10.10.3.4"]) == "203.0.113.9"
    assert proxies.client("198.51.100.7", ["203.0.113.9"]) == "198.51.100.7"
    assert proxies.client("127.0.0.1", ["not-an-address"]) == "127.0.0.1"
    with pytest.raises(ValueError, match="not an IP address"):
        settings(trusted_proxies=["proxy.example"])

    app = create_app(store, settings(trusted_proxies=["127.0.0.1"]))
    before = audit_count(store)
    via_proxy = TestClient(app, client=("127.0.0.1", 50000))
    via_proxy.headers["X-Forwarded-For"] = "1.2.3.4, 203.0.113.9"
    assert login(via_proxy, "x-proxied", "wrong-password").status_code == 401
    direct = TestClient(app, client=("198.51.100.7", 50000))
    direct.headers["X-Forwarded-For"] = "203.0.113.10"
    assert login(direct, "x-direct", "wrong-password").status_code == 401
    with store.session() as s:
        ips = {
            e["entity_id"]: e["after"]["ip"]
            for e in audit_entries(s, limit=10)
            if e["seq"] > before and e["action"] == "auth.login_failed"
        }
    assert ips == {"x-proxied": "203.0.113.9", "x-direct": "198.51.100.7"}
