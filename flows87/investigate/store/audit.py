"""The append-only, hash-chained audit log.

Each entry's hash is sha256(previous entry's hash + the canonical JSON of the entry: seq, ts,
actor, action, entity type and id, before and after). Changing, inserting or deleting an entry
breaks the chain at that entry or the next: `verify_audit` names the first entry that does not
fit. (Deleting the newest entries leaves a shorter chain that still fits; keep a copy of the
latest hash elsewhere, e.g. `flows87 audit verify` output in a ticket, to catch that.) The
database refuses UPDATE and DELETE on the table too (triggers, see the first migration).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from flows87.investigate.store.models import AuditEntry, User, utcnow

GENESIS = "0" * 64
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


def entry_hash(
    prev_hash: str,
    seq: int,
    ts: datetime,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | None,
    before: str,
    after: str,
) -> str:
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
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


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
        row["hash"] = prev = entry_hash(
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
    entries: int
    head: str  # hash of the last entry (GENESIS when empty)
    broken: AuditBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def check_audit(session: Session, batch: int = 5000) -> AuditStatus:
    """Walk the whole chain in order; stop at the first entry that does not fit."""
    expected_seq, prev, count = 1, GENESIS, 0
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=batch)
    # the result is closed on every return (a server-side cursor on PostgreSQL: yield_per)
    with session.scalars(stmt) as result:
        for e in result:
            if e.seq != expected_seq:
                reason = (
                    f"entries {expected_seq}..{e.seq - 1} are missing (deleted?)"
                    if e.seq > expected_seq
                    else f"sequence number {e.seq} out of order"
                )
                return AuditStatus(
                    count, prev, AuditBreak(expected_seq if e.seq > expected_seq else e.seq, reason)
                )
            if e.prev_hash != prev:
                return AuditStatus(
                    count,
                    prev,
                    AuditBreak(
                        e.seq,
                        "previous-hash link broken (an entry before it was changed or removed)",
                    ),
                )
            want = entry_hash(
                prev, e.seq, e.ts, e.actor, e.action, e.entity_type, e.entity_id, e.before, e.after
            )
            if e.hash != want:
                return AuditStatus(
                    count, prev, AuditBreak(e.seq, "content does not match its hash (edited)")
                )
            prev, expected_seq, count = e.hash, expected_seq + 1, count + 1
    return AuditStatus(count, prev, None)


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
