"""The keyed audit chain against someone who holds the database but not the key (issue 14):
rewritten and re-chained entries, deleted newest entries (with an anchor), inserts that do not
extend the chain, INSERT OR REPLACE; the key's sources; `flows87 audit` exit codes; the legacy
prefix of a store written before the key; PostgreSQL roles."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from sqlalchemy import bindparam, select, text

from flows87.cli import main
from flows87.investigate.store import Store, check_audit
from flows87.investigate.store.audit import (
    GENESIS,
    KEYED,
    LEGACY,
    canonical,
    entry_hash,
    entry_mac,
    record,
)
from flows87.investigate.store.auditanchor import Anchor, check_anchor, make_anchor, read_anchor
from flows87.investigate.store.auditkey import AuditKeyError, audit_key
from flows87.investigate.store.models import AuditEntry, UTCDateTime, utcnow

KEY = "k" * 40
OTHER_KEY = "o" * 40


@pytest.fixture(autouse=True)
def audit_key_env(monkeypatch):
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", KEY)
    monkeypatch.delenv("FLOWS87_AUDIT_KEY_FILE", raising=False)


def _write(store: Store, n: int, start: int = 0) -> None:
    with store.session() as s:
        for i in range(start, start + n):
            record(s, "ivy", "case.commented", "case", f"C-{i}", {}, {"note": f"note {i}"})


def _drop_triggers(s, dialect: str) -> None:
    """What the database's owner can do: remove every refusal trigger."""
    if dialect == "sqlite":
        for name in ("audit_log_no_update", "audit_log_no_delete", "audit_log_extend_only"):
            s.execute(text(f"DROP TRIGGER {name}"))
    else:
        s.execute(text("DROP TRIGGER audit_log_append_only ON audit_log"))
        s.execute(text("DROP TRIGGER audit_log_extend_only ON audit_log"))


def _fields(e: AuditEntry, after: str | None = None) -> tuple:
    return (e.seq, e.ts, e.actor, e.action, e.entity_type, e.entity_id, e.before, after or e.after)


_INSERT = text(
    "INSERT INTO audit_log (seq, ts, actor, action, entity_type, entity_id, before, after, "
    "prev_hash, hash, alg) VALUES (:seq, :ts, :actor, :action, :entity_type, :entity_id, "
    ":before, :after, :prev_hash, :hash, :alg)"
).bindparams(bindparam("ts", type_=UTCDateTime))


def _rechain(s, start: int, *, alg: str, edit: dict[int, str], end: int | None = None) -> None:
    """Rewrite entries start..end with plain SHA-256 (no key), `edit` changing some."""
    entries = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    prev = GENESIS if start == 1 else entries[start - 2].hash
    rows = []
    for e in entries[start - 1 : end]:
        after = edit.get(e.seq, e.after)
        new = entry_hash(prev, *_fields(e, after))
        row = {c: getattr(e, c) for c in ("seq", "ts", "actor", "action", "entity_type")}
        row.update(entity_id=e.entity_id, before=e.before, after=after, prev_hash=prev)
        rows.append({**row, "hash": new, "alg": alg})
        prev = new
    last = rows[-1]["seq"]
    s.execute(text("DELETE FROM audit_log WHERE seq BETWEEN :a AND :b"), {"a": start, "b": last})
    s.expunge_all()
    for row in rows:
        s.execute(_INSERT, row)


def test_entries_are_keyed_and_the_key_matters(store):
    _write(store, 5)
    with store.session() as s:
        status = check_audit(s)
        assert status.ok and status.entries == 5 and status.legacy == 0
        e = s.get(AuditEntry, 3)
        assert e.alg == KEYED
        assert e.hash == entry_mac(KEY.encode(), e.prev_hash, *_fields(e))
        assert e.hash != entry_hash(e.prev_hash, *_fields(e))
        broken = check_audit(s, key=OTHER_KEY.encode()).broken
        assert broken is not None and broken.seq == 1 and "MAC" in broken.reason


@pytest.mark.parametrize("alg", [KEYED, LEGACY])
def test_an_entry_rewritten_and_rechained_with_plain_sha256_is_detected(store, alg):
    _write(store, 8)
    dialect = store.engine.dialect.name
    with store.session() as s:
        _drop_triggers(s, dialect)
        _rechain(s, 4, alg=alg, edit={4: canonical({"note": "nothing to see"})})
    with store.session() as s:
        broken = check_audit(s).broken
    assert broken is not None and broken.seq == 4
    assert ("MAC" if alg == KEYED else "unkeyed") in broken.reason


def test_a_whole_chain_rewritten_as_legacy_fails_the_anchor(store, tmp_path):
    _write(store, 6)
    with store.session() as s:
        anchor = make_anchor(s, check_audit(s))
        _drop_triggers(s, store.engine.dialect.name)
        _rechain(s, 1, alg=LEGACY, edit={2: canonical({"note": "forged"})})
    with store.session() as s:
        status = check_audit(s)
        assert status.ok and status.legacy == 6  # fits on its own: only an anchor tells
        _, broken = check_anchor(s, anchor)
    assert broken is not None and broken.seq == 6 and "rewritten" in broken.reason


def test_deleting_the_newest_entries_is_detected_with_an_anchor(store, tmp_path):
    _write(store, 5)
    path = tmp_path / "anchor.json"
    with store.session() as s:
        path.write_text(make_anchor(s, check_audit(s)).to_json())
    _write(store, 3, start=5)  # the chain grows past the anchor: still fine
    anchor = read_anchor(path)
    with store.session() as s:
        status, broken = check_anchor(s, anchor)
        assert broken is None and status.entries == 8
        _drop_triggers(s, store.engine.dialect.name)
        s.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    with store.session() as s:
        assert check_audit(s).ok  # a shorter chain fits...
        _, broken = check_anchor(s, anchor)  # ...but no longer reaches the anchored head
    assert broken is not None and broken.seq == 4 and "4..5 are missing" in broken.reason


def test_a_forged_anchor_is_refused(store):
    _write(store, 3)
    with store.session() as s:
        good = make_anchor(s, check_audit(s))
        assert check_anchor(s, good)[1] is None
        forged = Anchor(2, s.get(AuditEntry, 2).hash, good.ts, good.signature)
        assert "signature" in str(check_anchor(s, forged)[1])
        other = make_anchor(s, check_audit(s), key=OTHER_KEY.encode())
        assert "signature" in str(check_anchor(s, other)[1])


def _insert_sql(seq: int, prev: str, hash_: str, alg: str = KEYED, verb: str = "INSERT") -> str:
    return (
        f"{verb} INTO audit_log (seq, ts, actor, action, entity_type, entity_id, before, after, "
        f"prev_hash, hash, alg) VALUES ({seq}, '2026-01-01 00:00:00', 'mallory', 'x', 'case', "
        f"'C-1', '{{}}', '{{}}', '{prev}', '{hash_}', '{alg}')"
    )


def test_the_database_refuses_inserts_that_do_not_extend_the_chain(store):
    _write(store, 4)
    with store.session() as s:
        head = s.get(AuditEntry, 4).hash
        third = s.get(AuditEntry, 3).hash
        first = s.get(AuditEntry, 1).hash
    fresh = "f" * 64
    bad = [
        _insert_sql(4, third, fresh),  # an existing seq
        _insert_sql(6, head, fresh),  # a gap
        _insert_sql(5, third, fresh),  # not linked to the head
        _insert_sql(5, head, fresh, alg=LEGACY),  # unkeyed
    ]
    if store.engine.dialect.name == "sqlite":
        bad += [
            _insert_sql(2, first, fresh, verb="INSERT OR REPLACE"),
            _insert_sql(5, head, third, verb="INSERT OR REPLACE"),  # would replace entry 3
            _insert_sql(5, head, third, verb="REPLACE"),
        ]
    else:
        # the statement-level UPDATE trigger (0001) refuses it first
        bad.append(_insert_sql(2, GENESIS, fresh) + " ON CONFLICT (seq) DO UPDATE SET actor='m'")
    for sql in bad:
        refused = pytest.raises(Exception, match="extend the chain|append-only")
        with refused, store.session() as s:
            s.execute(text(sql))
    with store.session() as s:
        assert check_audit(s).entries == 4
        assert s.get(AuditEntry, 3).hash == third
    # one that extends it is let through (and fails only the MAC check: no key)
    with store.session() as s:
        s.execute(text(_insert_sql(5, head, fresh)))
    with store.session() as s:
        broken = check_audit(s).broken
        assert broken is not None and broken.seq == 5 and "MAC" in broken.reason


def test_insert_or_replace_cannot_delete_through_the_sqlite_file(tmp_path):
    """The same attack as a plain sqlite3 client on the file (no flows87 code)."""
    store = Store.open(tmp_path / "cases.db")
    store.upgrade()
    _write(store, 3)
    store.dispose()
    con = sqlite3.connect(tmp_path / "cases.db")
    head = con.execute("SELECT hash FROM audit_log WHERE seq = 3").fetchone()[0]
    first = con.execute("SELECT hash FROM audit_log WHERE seq = 1").fetchone()[0]
    for sql in (
        _insert_sql(1, GENESIS, "e" * 64, verb="INSERT OR REPLACE"),
        _insert_sql(4, head, first, verb="INSERT OR REPLACE"),
    ):
        with pytest.raises(sqlite3.IntegrityError, match="extend the chain"):
            con.execute(sql)
    assert con.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 3
    con.close()


def _legacy_store(path: Path, n: int) -> Store:
    """A store written at revision 0001 (plain SHA-256 chain), then upgraded."""
    store = Store.open(path)
    store.upgrade("0001")
    prev = GENESIS
    with store.engine.begin() as con:
        for seq in range(1, n + 1):
            row = {
                "seq": seq,
                "ts": utcnow(),
                "actor": "system",
                "action": "run.loaded",
                "entity_type": "run",
                "entity_id": f"R{seq}",
                "before": "{}",
                "after": canonical({"n": seq}),
            }
            h = entry_hash(prev, *row.values())
            ins = text(
                "INSERT INTO audit_log (seq, ts, actor, action, entity_type, entity_id, before, "
                "after, prev_hash, hash) VALUES (:seq, :ts, :actor, :action, :entity_type, "
                ":entity_id, :before, :after, :prev_hash, :hash)"
            ).bindparams(bindparam("ts", type_=UTCDateTime))
            con.execute(ins, {**row, "prev_hash": prev, "hash": h})
            prev = h
    store.upgrade()
    return store


def test_entries_from_before_the_key_stay_verifiable_as_a_legacy_prefix(tmp_path):
    store = _legacy_store(tmp_path / "cases.db", 3)
    _write(store, 2)
    with store.session() as s:
        status = check_audit(s)
        assert status.ok and (status.entries, status.legacy) == (5, 3)
        algs = [e.alg for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
        assert algs == [LEGACY] * 3 + [KEYED] * 2
        _drop_triggers(s, "sqlite")
        # the legacy prefix re-chained with an edit: the first keyed entry no longer links
        _rechain(s, 2, alg=LEGACY, edit={2: canonical({"n": 99})}, end=3)
    with store.session() as s:
        broken = check_audit(s).broken
    assert broken is not None and broken.seq == 4 and "link" in broken.reason
    store.dispose()


def test_keyed_entries_pin_the_legacy_prefix(tmp_path):
    """Relinking the first keyed entry to a forged legacy prefix breaks its MAC."""
    store = _legacy_store(tmp_path / "cases.db", 1)
    _write(store, 2)
    with store.session() as s:
        _drop_triggers(s, "sqlite")
        _rechain(s, 1, alg=LEGACY, edit={1: canonical({"forged": True})}, end=1)
        forged = s.get(AuditEntry, 1).hash
        s.execute(text("UPDATE audit_log SET prev_hash = :h WHERE seq = 2"), {"h": forged})
    with store.session() as s:
        broken = check_audit(s).broken
    assert broken is not None and broken.seq == 2 and "MAC" in broken.reason
    store.dispose()


# --- where the key comes from -------------------------------------------------------------------


def test_key_sources_and_errors(tmp_path, monkeypatch):
    store = Store.open(tmp_path / "cases.db")
    store.upgrade()
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", "short")
    with pytest.raises(AuditKeyError, match="fewer than 32"):
        _write(store, 1)
    monkeypatch.delenv("FLOWS87_AUDIT_KEY")
    keyfile = tmp_path / "elsewhere" / "audit.key"
    monkeypatch.setenv("FLOWS87_AUDIT_KEY_FILE", str(keyfile))
    with pytest.raises(AuditKeyError, match="cannot read"):
        _write(store, 1)
    keyfile.parent.mkdir()
    keyfile.write_text(KEY + "\n")
    _write(store, 2)
    assert audit_key(store.engine) == KEY.encode()
    # the same key given directly verifies what the file's key wrote
    monkeypatch.delenv("FLOWS87_AUDIT_KEY_FILE")
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", KEY)
    with store.session() as s:
        assert check_audit(s).ok
    store.dispose()


def test_a_sqlite_store_without_a_key_gets_a_private_key_file(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("FLOWS87_AUDIT_KEY")
    store = Store.open(tmp_path / "cases.db")
    store.upgrade()
    with store.session() as s:
        assert audit_key(store.engine) is None
        assert check_audit(s).ok  # nothing to check yet
    _write(store, 2)
    sidecar = tmp_path / "cases.db.audit-key"
    assert sidecar.exists() and stat.S_IMODE(sidecar.stat().st_mode) == 0o600
    assert len(sidecar.read_bytes().strip()) >= 32
    assert "generated" in caplog.text
    with store.session() as s:
        assert check_audit(s).ok
    # the key file gone: keyed entries cannot be checked, a clear error
    key = sidecar.read_text().strip()
    sidecar.unlink()
    with pytest.raises(AuditKeyError, match="no audit key"), store.session() as s:
        check_audit(s)
    monkeypatch.setenv("FLOWS87_AUDIT_KEY", key)
    with store.session() as s:
        assert check_audit(s).ok
    store.dispose()


def test_a_postgresql_store_needs_a_configured_key(store, monkeypatch):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores generate a key file")
    monkeypatch.delenv("FLOWS87_AUDIT_KEY")
    with pytest.raises(AuditKeyError, match="FLOWS87_AUDIT_KEY"):
        _write(store, 1)


# --- the command line ---------------------------------------------------------------------------


def test_audit_commands_and_exit_codes(tmp_path, capsys, monkeypatch):
    db = str(tmp_path / "cases.db")
    assert main(["store", "upgrade", "--db", db]) == 0
    store = Store.open(db)
    _write(store, 5)
    anchor = tmp_path / "anchor.json"
    capsys.readouterr()
    assert main(["audit", "anchor", "--db", db, "--out", str(anchor)]) == 0
    assert json.loads(anchor.read_text())["seq"] == 5
    _write(store, 2, start=5)
    assert main(["audit", "verify", "--db", db, "--anchor", str(anchor)]) == 0
    assert main(["audit", "verify", "--db", db, "--no-legacy"]) == 0
    assert "7 entries" in capsys.readouterr().out
    # deleting the newest entries: only the anchor tells
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.execute("DELETE FROM audit_log WHERE seq >= 5")
    con.commit()
    assert main(["audit", "verify", "--db", db]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--db", db, "--anchor", str(anchor)]) == 4
    assert "audit entry 5: entries 5..5 are missing" in capsys.readouterr().err
    # an edited entry: named, and no anchor of a broken chain
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    con.commit()
    con.close()
    assert main(["audit", "verify", "--db", db]) == 4
    assert "audit entry 2" in capsys.readouterr().err
    assert main(["audit", "anchor", "--db", db, "--out", str(tmp_path / "a2.json")]) == 4
    assert not (tmp_path / "a2.json").exists()
    # not an anchor; no key
    (tmp_path / "bad.json").write_text("{}")
    assert main(["audit", "verify", "--db", db, "--anchor", str(tmp_path / "bad.json")]) == 2
    monkeypatch.delenv("FLOWS87_AUDIT_KEY")
    capsys.readouterr()
    assert main(["audit", "verify", "--db", db]) == 2
    assert "FLOWS87_AUDIT_KEY" in capsys.readouterr().err
    store.dispose()


# --- PostgreSQL roles ---------------------------------------------------------------------------


def _app_role(server, name: str) -> None:
    server.admin(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') "
        f"THEN CREATE ROLE {name} LOGIN; END IF; END $$"
    )


@pytest.mark.parametrize("how", ["command", "migration"])
def test_the_app_role_can_only_append_to_the_audit_log(postgres_server, monkeypatch, how):
    role = f"flows87_app_{os.getpid()}"
    _app_role(postgres_server, role)
    name = postgres_server.new_database()
    url = postgres_server.url(name)
    store = Store.open(url)
    try:
        if how == "migration":
            monkeypatch.setenv("FLOWS87_DB_APP_ROLE", role)
            store.upgrade()
        else:
            store.upgrade()
            assert main(["audit", "grant", "--db", url, "--app-role", role]) == 0
        app = Store.open(url.replace("postgres@", f"{role}@"))
        _write(app, 3)  # the app appends...
        with app.session() as s:
            assert check_audit(s).ok
            s.execute(text("SELECT count(*) FROM cases"))
        for sql in (  # ...and can do nothing else to the log
            "UPDATE audit_log SET actor = 'm'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "DROP TRIGGER audit_log_extend_only ON audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        ):
            denied = pytest.raises(Exception, match="permission denied|must be owner")
            with denied, app.session() as s:
                s.execute(text(sql))
        app.dispose()
    finally:
        store.dispose()
        postgres_server.drop_database(name)


def test_grant_refuses_sqlite_and_unknown_roles(tmp_path, capsys):
    db = str(tmp_path / "cases.db")
    assert main(["store", "upgrade", "--db", db]) == 0
    assert main(["audit", "grant", "--db", db, "--app-role", "app"]) == 2
    assert "PostgreSQL" in capsys.readouterr().err


def test_anchor_file_round_trip(tmp_path):
    a = Anchor(3, "a" * 64, "2026-01-01T00:00:00.000000Z", "b" * 64)
    p = Path(tmp_path / "a.json")
    p.write_text(a.to_json())
    assert read_anchor(p) == a
