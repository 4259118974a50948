"""The case store's commands: store upgrade/load, users add, audit verify."""

from __future__ import annotations

import io
import sqlite3
import sys

from postgres import make_run

from flows87.cli import main
from flows87.investigate.store import Store, authenticate


def _run(args, stdin: str = ""):
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(args)
    finally:
        sys.stdin = old


def test_store_users_and_audit_commands(tmp_path, capsys):
    db = str(tmp_path / "cases.db")
    run = make_run(tmp_path / "run")
    assert _run(["store", "load", str(run), "--db", db]) == 2  # not created yet
    assert "flows87 store upgrade" in capsys.readouterr().err
    assert _run(["store", "upgrade", "--db", db]) == 0
    assert _run(["store", "load", str(run), "--db", db, "--interval", "2026-01-01"]) == 0
    assert "3 new" in capsys.readouterr().out
    assert _run(["store", "load", str(run), "--db", db, "--interval", "2026-01-01"]) == 0
    assert "0 new, 0 updated, 3 unchanged" in capsys.readouterr().out
    assert (
        _run(
            ["users", "add", "ivy", "--role", "investigator", "--password-stdin", "--db", db],
            "s3cret-pass\n",
        )
        == 0
    )
    assert (
        _run(
            ["users", "add", "bob", "--role", "boss", "--password-stdin", "--db", db],
            "s3cret-pass\n",
        )
        == 2
    )
    assert (
        _run(
            ["users", "add", "ivy", "--role", "admin", "--password-stdin", "--db", db],
            "s3cret-pass\n",
        )
        == 2
    )
    store = Store.open(db)
    with store.session() as s:
        assert authenticate(s, "ivy", "s3cret-pass") is not None
    store.dispose()
    capsys.readouterr()
    assert _run(["audit", "verify", "--db", db]) == 0
    assert "audit log ok" in capsys.readouterr().out
    out = tmp_path / "labels.parquet"
    assert _run(["store", "dispositions", "--out", str(out), "--db", db]) == 0
    # tamper with entry 2 behind the database's back
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    con.commit()
    con.close()
    capsys.readouterr()
    assert _run(["audit", "verify", "--db", db]) == 4
    assert "audit entry 2" in capsys.readouterr().err
