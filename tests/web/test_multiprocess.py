"""Two real server processes on one store: `flows87 serve` started twice (two ports) on one
SQLite file and, when tests/postgres.py finds a server, one PostgreSQL database. They share
sign-in limits (per user and address, per account) and session revocations, and their writes
at the same moment all succeed with an intact audit chain (BEGIN IMMEDIATE / the advisory
lock). Also: `flows87 serve --workers 2`, and SQLite refused in a distributed deployment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from web_client import SECRET, USERS, csrf_of, loaded_store

from flows87.errors import ConfigError
from flows87.investigate.store import Store, verify_audit
from flows87.investigate.store.models import Note
from flows87.investigate.web.server import free_port

AUDIT_KEY = "audit-key-of-the-multiprocess-tests-0123456789"


def server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWS87_")}
    env.update(
        FLOWS87_HOME=str(home),
        FLOWS87_SECRET_KEY=SECRET,
        FLOWS87_AUDIT_KEY=AUDIT_KEY,
        FLOWS87_LOGIN_FAILURES="3",
        FLOWS87_ACCOUNT_FAILURES="4",
        FLOWS87_ACCOUNT_BACKOFF="600",
        FLOWS87_TRUSTED_PROXIES="127.0.0.1",
    )
    return env


class Served:
    """`flows87 serve` in a subprocess, its output in a file."""

    def __init__(self, url: str, home: Path, *args: str) -> None:
        self.port = free_port()
        self.log = home / f"serve-{self.port}.log"
        cmd = [sys.executable, "-m", "flows87.cli", "serve", "--db", url, "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*cmd, "--log-level", "warning", *args],
                env=server_env(home),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 90) -> Served:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flows87 serve exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"flows87 serve did not answer on {self.url}: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, run_dir, tmp_path, monkeypatch) -> Iterator[str]:
    """A store with the demo run and the users, on each backend (its URL)."""
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", AUDIT_KEY)
    server, name = None, None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cases.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        name = server.new_database()
        url = server.url(name)
    loaded_store(url, run_dir).dispose()
    yield url
    if server is not None:
        server.drop_database(name)


@pytest.fixture
def two_servers(store_url, tmp_path) -> Iterator[tuple[Served, Served]]:
    a, b = Served(store_url, tmp_path), Served(store_url, tmp_path)
    try:
        yield a.wait(), b.wait()
    finally:
        a.stop()
        b.stop()


def sign_in(base: str, name: str, password: str | None = None, address: str = "") -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    with httpx.Client(base_url=base, headers=headers) as c:
        token = csrf_of(c.get("/login").text)
        return c.post(
            "/login",
            data={
                "username": name,
                "password": password or USERS[name][1],
                "csrf_token": token,
                "next": "/cases",
            },
        )


def test_two_processes_share_login_limits(two_servers):
    a, b = two_servers
    # per user and address: three failures on A, and B refuses even the right password
    for _ in range(3):
        assert sign_in(a.url, "ian", "wrong", "203.0.113.1").status_code == 401
    r = sign_in(b.url, "ian", address="203.0.113.1")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 800
    # per account: one failure from each of four addresses on A blocks sue on B everywhere
    for i in range(4):
        assert sign_in(a.url, "sue", "wrong", f"203.0.113.{10 + i}").status_code == 401
    r = sign_in(b.url, "sue", address="203.0.113.50")
    assert r.status_code == 429 and 500 < int(r.headers["retry-after"]) <= 600
    # B itself works: another user from another address signs in
    assert sign_in(b.url, "sam", address="203.0.113.60").status_code == 303


def test_signing_out_on_one_process_revokes_the_cookie_on_the_other(two_servers):
    a, b = two_servers
    with httpx.Client(base_url=a.url) as c:
        token = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": "sam", "password": USERS["sam"][1], "csrf_token": token},
        )
        assert r.status_code == 303
        cookies = dict(c.cookies)
        # the session works on B too (one secret, one store)
        with httpx.Client(base_url=b.url, cookies=cookies) as on_b:
            assert on_b.get("/cases").status_code == 200
        token = csrf_of(c.get("/cases").text)
        assert c.post("/logout", data={"csrf_token": token}).status_code == 303
    with httpx.Client(base_url=b.url, cookies=cookies) as replay:
        r = replay.get("/cases")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    with httpx.Client(base_url=a.url, cookies=cookies) as replay:
        assert replay.get("/cases").status_code == 303


def test_writes_through_both_processes_at_once(two_servers, store_url):
    """Forty notes posted at the same time through both processes: every one saved, none a
    "database is locked" or a forked audit chain."""
    a, b = two_servers
    with httpx.Client(base_url=a.url) as c:
        token = csrf_of(c.get("/login").text)
        data = {"username": "sam", "password": USERS["sam"][1], "csrf_token": token}
        assert c.post("/login", data=data).status_code == 303
        page = c.get("/cases").text
        case_id = re.search(r'href="/cases/(C-[0-9a-f]+)"', page).group(1)
        token = csrf_of(c.get(f"/cases/{case_id}").text)
        cookies = dict(c.cookies)

    def post(i: int) -> int:
        base = (a, b)[i % 2].url
        with httpx.Client(base_url=base, cookies=cookies, timeout=60) as client:
            r = client.post(
                f"/cases/{case_id}/comment", data={"csrf_token": token, "body": f"note {i}"}
            )
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(40)))
    assert codes == [303] * 40
    store = Store.open(store_url)
    try:
        with store.session() as s:
            bodies = set(s.scalars(select(Note.body).where(Note.case_id == case_id)))
            assert {f"note {i}" for i in range(40)} <= bodies
            assert verify_audit(s) is None
            assert s.scalar(select(func.count()).select_from(Note)) >= 40
    finally:
        store.dispose()


INCREMENTS = """
import sys
from flows87.investigate.store import Store
from flows87.investigate.store.shared_state import LoginCounter

store = Store.open(sys.argv[1])
for _ in range(int(sys.argv[2])):
    with store.session(write=True) as s:
        row = s.get(LoginCounter, "race")  # read, then write what was read
        row.failures += 1
store.dispose()
"""


def test_write_units_of_work_of_two_processes_lose_nothing(store_url, tmp_path):
    """Two processes increment one row 400 times each, read-then-write, at the same time: all
    800 counted (BEGIN IMMEDIATE on SQLite, the advisory lock on PostgreSQL), no "database is
    locked"."""
    from flows87.investigate.store.shared_state import LoginCounter

    store = Store.open(store_url)
    with store.session(write=True) as s:
        s.add(
            LoginCounter(
                key="race", failures=0, refused=0, window_start=0, last_failure=0, blocked_until=0
            )
        )
    cmd = [sys.executable, "-c", INCREMENTS, store_url, "400"]
    procs = [
        subprocess.Popen(cmd, env=server_env(tmp_path), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    try:
        with store.session() as s:
            assert s.get(LoginCounter, "race").failures == 800
    finally:
        store.dispose()


def test_serve_with_workers(store_url, tmp_path):
    served = Served(store_url, tmp_path, "--workers", "2").wait()
    try:
        assert sign_in(served.url, "ivy").status_code == 303
    finally:
        served.stop()


def test_sqlite_is_refused_in_a_distributed_deployment(tmp_path, monkeypatch):
    db = tmp_path / "cases.db"
    monkeypatch.delenv("FLOWS87_DISTRIBUTED", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    with pytest.raises(ConfigError, match="SQLite's locking is not safe") as info:
        Store.open(db)
    assert "Airflow executor is CeleryExecutor" in str(info.value)
    assert "FLOWS87_DB_URL" in info.value.hint
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    Store.open(db).dispose()
    monkeypatch.setenv("FLOWS87_DISTRIBUTED", "1")
    with pytest.raises(ConfigError, match="FLOWS87_DISTRIBUTED=1"):
        Store.open(db)
    # PostgreSQL is what a distributed deployment uses (opening it connects nothing yet)
    Store.open("postgresql+psycopg://flows87@db.example/flows87").dispose()
    # the deployment may say it is not distributed after all (one host, a remote executor)
    monkeypatch.setenv("FLOWS87_DISTRIBUTED", "0")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "airflow.providers.celery.CeleryExecutor")
    Store.open(db).dispose()
    # the CLI says so and stops
    env = dict(server_env(tmp_path), FLOWS87_DISTRIBUTED="1")
    r = subprocess.run(
        [sys.executable, "-m", "flows87.cli", "serve", "--db", str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "SQLite's locking is not safe" in r.stderr + r.stdout
