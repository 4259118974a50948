"""Helpers shared by the case app's tests (test_web.py, test_browser.py): a real pipeline run
made once per test session, a case store loaded from it with one user of each role, and
signing in through the login form. (No tests here.)"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from flows87.investigate.store import Store, create_user, list_cases, load_run
from flows87.investigate.store.users import use_password_hasher

# argon2 at its default cost takes about 0.3 s a hash here; the tests use a cheap one
use_password_hasher(PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))

USERS = {
    "ivy": ("investigator", "ivy-password"),
    "ian": ("investigator", "ian-password"),
    "sam": ("supervisor", "sam-password"),
    "sue": ("supervisor", "sue-password"),
    "ada": ("admin", "ada-password"),
}
SECRET = "test-secret-key-for-the-case-app-0123456789"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

_lock = threading.Lock()
_run: dict[str, Path] = {}


def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the whole pipeline on generated data (the smallest the generator makes:
    800 accounts, 7 days; about 10 s), made once per test session."""
    with _lock:
        if "run" not in _run:
            from flows87.io import write_parquet
            from flows87.pipeline.run import run
            from flows87.research.synth import MIN_ACCOUNTS, MIN_DAYS, generate

            base = tmp_path_factory.mktemp("web-demo")
            data = generate(MIN_ACCOUNTS, MIN_DAYS, seed=7)
            write_parquet(data.accounts, base / "data" / "accounts.parquet")
            write_parquet(data.transactions, base / "data" / "transactions.parquet")
            run(base / "data", base / "run")
            _run["run"] = base / "run"
        return _run["run"]


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
