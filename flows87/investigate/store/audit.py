"""The append-only audit log, chained with a key kept outside the database.

Each entry's `hash` is HMAC-SHA256(key, previous entry's hash + the canonical JSON of the entry:
seq, ts, actor, action, entity type and id, before and after), `alg` 'hmac-sha256'; the key
comes from flows87.investigate.store.auditkey. Someone who holds the database but not the key
cannot change, insert or delete an entry without `check_audit` naming the first one that does
not fit, nor re-chain the log with plain SHA-256. Deleting the newest entries leaves a shorter
chain that still fits: a signed head exported elsewhere (`anchor`, `flows87 audit anchor`)
catches that. Entries written before the key (alg 'sha256', plain SHA-256 of the same text)
stay verifiable as a legacy prefix: the first keyed entry's MAC covers the last legacy hash, so
the prefix cannot change unnoticed once a keyed entry follows it; a legacy entry after a keyed
one is a break. The database refuses UPDATE and DELETE and inserts that do not extend the
chain (triggers, migrations 0001 and 0002). See docs/audit.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from flows87.investigate.store.auditkey import audit_key, require_key
from flows87.investigate.store.models import AuditEntry, User, utcnow

GENESIS = "0" * 64
KEYED, LEGACY = "hmac-sha256", "sha256"
_PG_LOCK = 8_708_700  # advisory lock key: one writer appends to the chain at a time


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def canonical(value: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 kept, datetimes as UTC ISO strings."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_payload(
    prev_hash: str,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | None,
    before: str,
    after: str,
) -> bytes:
    """What an entry's hash or MAC is made of: the previous hash and the entry's canonical JSON."""
    payload = canonical(
        {
            "seq": seq,
            "ts": iso(ts),
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "before": before,
            "after": after,
        }
    )
    return (prev_hash + payload).encode("utf-8")


def entry_hash(prev_hash: str, *fields: Any) -> str:
    """The legacy (unkeyed) hash: sha256(prev_hash + canonical JSON)."""
    return hashlib.sha256(entry_payload(prev_hash, *fields)).hexdigest()


def entry_mac(key: bytes, prev_hash: str, *fields: Any) -> str:
    """The keyed hash: HMAC-SHA256(key, prev_hash + canonical JSON)."""
    return hmac.new(key, entry_payload(prev_hash, *fields), hashlib.sha256).hexdigest()


def actor_name(actor: User | str | None) -> str:
    if actor is None:
        return "system"
    return actor.username if isinstance(actor, User) else str(actor)


def _head(session: Session) -> tuple[int, str]:
    """The last (seq, hash), after taking the writers' lock on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    last = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return (last[0], last[1]) if last else (0, GENESIS)


def record_many(session: Session, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append entries (dicts with actor, action, entity_type, entity_id, before, after and
    optionally ts) in one bulk insert; returns the rows written."""
    if not entries:
        return []
    key = cast(bytes, audit_key(session.get_bind(), create=True))
    seq, prev = _head(session)
    rows = []
    now = utcnow()
    for e in entries:
        seq += 1
        ts = e.get("ts") or now
        row = {
            "seq": seq,
            "ts": ts,
            "actor": actor_name(e.get("actor")),
            "action": e["action"],
            "entity_type": e["entity_type"],
            "entity_id": e.get("entity_id"),
            "before": canonical(e.get("before") or {}),
            "after": canonical(e.get("after") or {}),
        }
        row["prev_hash"] = prev
        row["alg"] = KEYED
        row["hash"] = prev = entry_mac(
            key,
            prev,
            seq,
            ts,
            row["actor"],
            row["action"],
            row["entity_type"],
            row["entity_id"],
            row["before"],
            row["after"],
        )
        rows.append(row)
    # Core insert on the mapped table (as the loader does): declarative types __table__ as a
    # FromClause, while a mapped class with __tablename__ always has a Table there
    session.execute(cast(Table, AuditEntry.__table__).insert(), rows)
    return rows


def record(
    session: Session,
    actor: User | str | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one entry: who (a User or a name like 'system'), what, on which entity, the
    state before and after (JSON-able dicts)."""
    return record_many(
        session,
        [
            {
                "actor": actor,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "before": before,
                "after": after,
            }
        ],
    )[0]


@dataclass(frozen=True)
class AuditBreak:
    """The first entry that does not fit the chain, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.reason}"


@dataclass(frozen=True)
class AuditStatus:
    entries: int  # entries that fit, from the first
    head: str  # hash of the last entry that fits (GENESIS when none)
    broken: AuditBreak | None
    legacy: int = 0  # of them, unkeyed entries from before the key (a prefix)

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def head_seq(self) -> int:
        return self.entries


def _misfit(e: AuditEntry, expected_seq: int, prev: str, keyed_seen: bool) -> AuditBreak | None:
    """Why entry `e` does not follow (expected_seq, prev), apart from its hash; None if it does."""
    if e.seq != expected_seq:
        if e.seq > expected_seq:
            return AuditBreak(expected_seq, f"entries {expected_seq}..{e.seq - 1} are missing")
        return AuditBreak(e.seq, f"sequence number {e.seq} out of order")
    if e.prev_hash != prev:
        return AuditBreak(
            e.seq, "previous-hash link broken (an entry before it was changed or removed)"
        )
    if e.alg not in (KEYED, LEGACY):
        return AuditBreak(e.seq, f"unknown hash algorithm {e.alg!r}")
    if e.alg == LEGACY and keyed_seen:
        return AuditBreak(
            e.seq, "an unkeyed (plain SHA-256) entry after keyed ones: written without the key"
        )
    return None


def check_audit(session: Session, batch: int = 5000, key: bytes | None = None) -> AuditStatus:
    """Walk the whole chain in order; stop at the first entry that does not fit. The key (by
    default the store's, see auditkey) is needed as soon as a keyed entry is met."""
    expected_seq, prev, count, legacy = 1, GENESIS, 0, 0
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)
    # the result is closed on every return (a server-side cursor on PostgreSQL: yield_per)
    with session.scalars(stmt) as result:
        for e in result:
            misfit = _misfit(e, expected_seq, prev, keyed_seen=count > legacy)
            if misfit is not None:
                return AuditStatus(count, prev, misfit, legacy)
            fields = (e.seq, e.ts, e.actor, e.action, e.entity_type, e.entity_id, e.before, e.after)
            if e.alg == KEYED:
                key = key or require_key(session.get_bind())
                fits = hmac.compare_digest(e.hash, entry_mac(key, prev, *fields))
            else:
                fits = e.hash == entry_hash(prev, *fields)
            if not fits:
                reason = "content does not match its MAC (edited, or written without the key)"
                return AuditStatus(count, prev, AuditBreak(e.seq, reason), legacy)
            legacy += e.alg == LEGACY
            prev, expected_seq, count = e.hash, expected_seq + 1, count + 1
    return AuditStatus(count, prev, None, legacy)


def verify_audit(session: Session) -> AuditBreak | None:
    """None when the whole chain is intact, else the first broken entry."""
    return check_audit(session).broken


def audit_entries(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    """Audit entries as dicts (before/after parsed), filtered by entity and/or actor."""
    stmt = select(AuditEntry)
    if entity_type is not None:
        stmt = stmt.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    order = AuditEntry.seq.desc() if newest_first else AuditEntry.seq
    stmt = stmt.order_by(order).limit(max(1, min(limit, 10_000))).offset(max(0, offset))
    return [
        {
            "seq": e.seq,
            "ts": e.ts,
            "actor": e.actor,
            "action": e.action,
            "entity_type": e.entity_type,
            "entity_id": e.entity_id,
            "before": json.loads(e.before),
            "after": json.loads(e.after),
            "hash": e.hash,
        }
        for e in session.scalars(stmt)
    ]


def audit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry)) or 0
