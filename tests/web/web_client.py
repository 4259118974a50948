"""What the case app's tests share (tests/web/): the users of the test store, signing in through
the login form, posting forms with their CSRF token, and reading a case's state back from the
store. The fixtures (a pipeline run, a loaded store, the app) are in tests/web/conftest.py."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from flows87.investigate.store import Store, create_user, get_case, list_cases, load_run
from flows87.investigate.store.models import AuditEntry
from flows87.investigate.web import WebSettings

USERS = {
    "ivy": ("investigator", "ivy-password"),
    "ian": ("investigator", "ian-password"),
    "sam": ("supervisor", "sam-password"),
    "sue": ("supervisor", "sue-password"),
    "ada": ("admin", "ada-password"),
}
SECRET = "test-secret-key-for-the-case-app-0123456789"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def loaded_store(url: str, run_dir: Path) -> Store:
    """A migrated store at `url` with the run loaded and the USERS created."""
    store = Store.open(url)
    store.upgrade()
    with store.session() as s:
        result = load_run(s, run_dir, "demo")
        assert result.cases > 0, "the demo run found no cases"
        for name, (role, password) in USERS.items():
            create_user(s, name, role, password)
    return store


def top_case(store: Store) -> str:
    with store.session() as s:
        return list_cases(s, page_size=1).items[0]["case_id"]


def csrf_of(html: str) -> str:
    m = CSRF_RE.search(html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client, name: str, password: str | None = None):
    """Sign in through the form; returns the response to the POST (303 on success)."""
    page = client.get("/login")
    token = csrf_of(page.text)
    return client.post(
        "/login",
        data={
            "username": name,
            "password": password or USERS[name][1],
            "csrf_token": token,
            "next": "/cases",
        },
        follow_redirects=False,
    )


def post_form(client, path: str, data: dict | None = None, page: str | None = None, **kw):
    """POST a form with the CSRF token of `page` (default: the case page the path belongs to)."""
    source = page or re.sub(r"^(/cases/[^/]+)/.*$", r"\1", path)
    token = csrf_of(client.get(source).text)
    return client.post(
        path, data={**(data or {}), "csrf_token": token}, follow_redirects=False, **kw
    )


HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def settings(**kw) -> WebSettings:
    return WebSettings(secret_key=SECRET, **kw)


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
