"""A signed head of the audit chain, kept outside the database.

Deleting the newest entries leaves a chain that still fits. An anchor (the newest entry's seq
and MAC, when it was taken, and an HMAC over them with the audit key) kept elsewhere - WORM
storage, an e-mail to the compliance officer - lets `check_anchor` tell that the chain still
reaches that head unchanged. Whoever holds the database but not the key can neither forge an
anchor nor a chain that reaches one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows87.errors import ConfigError
from flows87.investigate.store.audit import AuditBreak, AuditStatus, canonical, check_audit, iso
from flows87.investigate.store.auditkey import require_key
from flows87.investigate.store.models import AuditEntry, utcnow

FORMAT = "flows87-audit-anchor/1"


@dataclass(frozen=True)
class Anchor:
    seq: int  # the newest entry's sequence number (0: an empty log)
    mac: str  # its hash/MAC
    ts: str  # when the anchor was taken (UTC ISO)
    signature: str  # HMAC-SHA256(key, canonical JSON of format, seq, mac, ts)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2) + "\n"


def _signature(key: bytes, seq: int, mac: str, ts: str) -> str:
    body = canonical({"format": FORMAT, "seq": seq, "mac": mac, "ts": ts})
    return hmac.new(key, body.encode("utf-8"), hashlib.sha256).hexdigest()


def make_anchor(session: Session, status: AuditStatus, key: bytes | None = None) -> Anchor:
    """The signed head of an intact chain (check it first: `status` from check_audit)."""
    if not status.ok:
        raise ValueError(f"will not anchor a broken chain ({status.broken})")
    key = key or require_key(session.get_bind())
    ts = iso(utcnow())
    return Anchor(
        status.head_seq, status.head, ts, _signature(key, status.head_seq, status.head, ts)
    )


def read_anchor(path: Path) -> Anchor:
    """An anchor file as `flows87 audit anchor` wrote it (its signature is not checked here)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        anchor = Anchor(int(data["seq"]), str(data["mac"]), str(data["ts"]), str(data["signature"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the audit anchor: {exc}", file=path) from None
    return anchor


def check_anchor(
    session: Session, anchor: Anchor, key: bytes | None = None
) -> tuple[AuditStatus, AuditBreak | None]:
    """The chain's status, and where it fails the anchor: a bad signature, a chain broken or
    ending before the anchored entry, or an anchored entry that is not the one anchored."""
    key = key or require_key(session.get_bind())
    want = _signature(key, anchor.seq, anchor.mac, anchor.ts)
    status = check_audit(session, key=key)
    if not hmac.compare_digest(want, anchor.signature):
        why = (
            "the anchor's signature does not match the audit key (a forged anchor, or another key)"
        )
        return status, AuditBreak(anchor.seq, why)
    if status.broken is not None:
        return status, status.broken
    if status.head_seq < anchor.seq:
        first = status.head_seq + 1
        why = (
            f"entries {first}..{anchor.seq} are missing: the chain ends before the anchored "
            f"head of {anchor.ts} (the newest entries were deleted)"
        )
        return status, AuditBreak(first, why)
    if anchor.seq == 0:
        return status, None
    mac = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == anchor.seq))
    if mac is None or not hmac.compare_digest(mac, anchor.mac):
        why = f"is not the entry anchored at {anchor.ts} (the chain was rewritten)"
        return status, AuditBreak(anchor.seq, why)
    return status, None
