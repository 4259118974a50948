"""A throwaway PostgreSQL server for the tests, and the case store fixtures over both backends.

The server (Debian's postgresql binaries, /usr/lib/postgresql/<version>/bin) is started once
per test session on 127.0.0.1 with a free port and a fresh data directory, as the `postgres`
user when the tests run as root, and stopped at the end. When it cannot start, the PostgreSQL
tests skip with the reason, or fail when FLOWS87_REQUIRE_POSTGRES=1 (CI sets it).

The fixtures over it (postgres_server, backend, store) are in tests/conftest.py; make_run
writes a small run directory for the case store's tests.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

REQUIRE = "FLOWS87_REQUIRE_POSTGRES"


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise PostgresUnavailable(
        "PostgreSQL binaries not found (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_ctl on PATH); "
        "install Debian's postgresql package"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="flows87-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root and there is no `postgres` user"
                ) from None
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.started = False
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
        preexec = None
        if self.user is not None:
            uid, gid, home = self.user.pw_uid, self.user.pw_gid, self.user.pw_dir

            def preexec() -> None:
                os.setgid(gid)
                os.setuid(uid)

            env["HOME"] = home
        proc = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            env=env,
            preexec_fn=preexec,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(self.dir),
        )
        if proc.returncode != 0:
            log = self.dir / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
                + (f"\nserver log:\n{tail}" if tail else "")
            )

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start"
        )
        self.started = True

    def stop(self) -> None:
        if self.started:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            finally:
                self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def new_database(self, template: str | None = None) -> str:
        name = f"flows87_t{os.getpid()}_{next(self._names)}"
        self.admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_lock = threading.Lock()
_server: PostgresServer | None = None
_error: str | None = None
_users = 0


def acquire() -> PostgresServer:
    """The session's server (started on first use); raises PostgresUnavailable."""
    global _server, _error, _users
    with _lock:
        if _server is None and _error is None:
            try:
                server = PostgresServer()
                server.start()
                _server = server
            except PostgresUnavailable as exc:
                _error = str(exc)
            except (OSError, subprocess.SubprocessError) as exc:
                _error = f"cannot start PostgreSQL: {exc}"
        if _server is None:
            raise PostgresUnavailable(_error or "unknown error")
        _users += 1
        return _server


def release() -> None:
    global _server, _users
    with _lock:
        _users -= 1
        if _users <= 0 and _server is not None:
            _server.stop()
            _server = None


def unavailable(reason: str) -> None:
    message = f"PostgreSQL is not available: {reason}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{message} ({REQUIRE}=1 requires it)", pytrace=False)
    pytest.skip(message)


# --- a small run directory, as `flows87 run` writes it ------------------------------------


def make_run(
    run_dir: Path, *, variant: int = 1, memo: str | None = None, name: str | None = None
) -> Path:
    """Three cases (C-aaa, C-bbb, C-ccc) with signals, scored accounts, accounts and
    transactions. variant=2 changes C-aaa's evidence (a new signal and transaction, a higher
    risk) and leaves the others as they were."""
    from datetime import UTC, datetime, timedelta

    import polars as pl

    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    txns = []
    for i in range(12):
        src, dst = [("A1", "A2"), ("A2", "A3"), ("B1", "B2"), ("C1", "C2")][i % 4]
        txns.append(
            {
                "txn_id": f"T{i:03d}",
                "ts": t0 + timedelta(hours=i),
                "src_account": src,
                "dst_account": dst,
                "amount": 100.0 + i,
                "currency": "USD",
                "amount_base": 100.0 + i,
                "channel": "p2p" if i % 2 else "wire",
                "mcc": None,
                "src_country": "US",
                "dst_country": "MX" if i % 3 == 0 else "US",
                "location_id": None,
                "device_id": None,
                "memo": memo if i == 0 else None,
            }
        )
    txns.append(
        dict(txns[0], txn_id="T900", ts=t0 + timedelta(days=3), amount=5000.0, amount_base=5000.0)
    )
    a_txns = ["T000", "T001", "T004", "T005", "T008"] + (["T900"] if variant == 2 else [])
    cases = [
        {
            "case_id": "C-aaa",
            "rank": 1,
            "risk_score": 0.95 if variant == 2 else 0.9,
            "anchor_account": "A1",
            "central_account": "A2",
            "accounts": ["A1", "A2", "A3"],
            "n_accounts": 3,
            "typologies": ["sex_trafficking", "fan_in"],
            "families": ["behaviour", "network"],
            "signal_ids": ["ht_late_night_inflows", "ml_fan_in"]
            + (["fa_structuring"] if variant == 2 else []),
            "n_signals": 3 if variant == 2 else 2,
            "txn_ids": a_txns,
            "first_ts": t0,
            "last_ts": t0 + timedelta(days=3 if variant == 2 else 0, hours=8),
            "total_amount": 1000.0,
            "summary": "3 accounts with red flags; suspected sex trafficking.\nMore lines.",
        },
        {
            "case_id": "C-bbb",
            "rank": 2,
            "risk_score": 0.7,
            "anchor_account": "B1",
            "central_account": None,
            "accounts": ["B1", "B2"],
            "n_accounts": 2,
            "typologies": ["labour_exploitation"],
            "families": ["behaviour", "identity"],
            "signal_ids": ["lt_wage_sweep"],
            "n_signals": 1,
            "txn_ids": ["T002", "T006", "T010"],
            "first_ts": t0 + timedelta(hours=2),
            "last_ts": t0 + timedelta(hours=10),
            "total_amount": 300.0,
            "summary": "2 accounts; suspected labour exploitation.",
        },
        {
            "case_id": "C-ccc",
            "rank": 3,
            "risk_score": 0.5,
            "anchor_account": "C1",
            "central_account": None,
            "accounts": ["C1", "C2"],
            "n_accounts": 2,
            "typologies": ["structuring"],
            "families": ["behaviour", "anomaly"],
            "signal_ids": ["pyod_ensemble"],
            "n_signals": 1,
            "txn_ids": ["T003", "T007", "T011"],
            "first_ts": t0 + timedelta(days=20),
            "last_ts": t0 + timedelta(days=21),
            "total_amount": 300.0,
            "summary": "2 accounts; structuring.",
        },
    ]
    sig = [
        ("rule", "ht_late_night_inflows", "A1", ["T000"], 0.75, "behaviour", ["sex_trafficking"]),
        ("graph", "ml_fan_in", "A2", ["T001", "T005"], 1.0, "network", ["fan_in"]),
        ("rule", "lt_wage_sweep", "B1", ["T002"], 0.5, "behaviour", ["labour_exploitation"]),
        ("detector", "pyod_ensemble", "C1", [], 0.6, "anomaly", []),
        (
            "rule",
            "ht_late_night_inflows",
            "Z9",
            [],
            0.75,
            "behaviour",
            ["sex_trafficking"],
        ),  # in no case
    ]
    if variant == 2:
        sig.append(("rule", "fa_structuring", "A1", ["T900"], 0.75, "behaviour", ["structuring"]))
    signals = pl.DataFrame(
        [
            {
                "source": s,
                "signal_id": i,
                "account_id": a,
                "txn_ids": t,
                "score": sc,
                "family": f,
                "typologies": ty,
                "window_start": t0,
                "window_end": t0 + timedelta(days=7),
                "evidence": '{"count": 3, "instance": "x"}',
                "summary": f"Account {a} tripped {i}.",
            }
            for s, i, a, t, sc, f, ty in sig
        ],
        schema_overrides={"txn_ids": pl.List(pl.String), "typologies": pl.List(pl.String)},
    )
    ids = ["A1", "A2", "A3", "B1", "B2", "C1", "C2", "Z9"]
    scored = pl.DataFrame(
        {
            "account_id": ids,
            "risk_score": [0.9, 0.8, 0.2, 0.7, 0.3, 0.5, 0.1, 0.4],
            "case_id": ["C-aaa"] * 3 + ["C-bbb"] * 2 + ["C-ccc"] * 2 + [None],
            "signal_risk": [0.9] * 8,
            "anomaly_score": [0.1] * 8,
            "n_signals": [1] * 8,
            "families": [["behaviour"]] * 8,
        }
    )
    accounts = pl.DataFrame(
        {
            "account_id": ids,
            "party_id": [f"P{i}" for i in range(8)],
            "bank_id": ["0131"] * 8,
            "kind": ["individual"] * 8,
            "opened_at": [t0 - timedelta(days=400)] * 8,
            "country": ["US"] * 8,
            "name": [name or "Ann Example"] + [f"Person {i}" for i in range(7)],
            "address": ["1 Main St"] * 8,
        }
    )
    pl.DataFrame(cases).write_parquet(run_dir / "cases.parquet")
    signals.write_parquet(run_dir / "signals.parquet")
    scored.write_parquet(run_dir / "accounts_scored.parquet")
    accounts.write_parquet(run_dir / "accounts.parquet")
    pl.DataFrame(txns).write_parquet(run_dir / "transactions.parquet")
    return run_dir
