"""The audit key: the secret the audit chain's HMACs are made with, kept outside the database.

Where it comes from, first match wins:
1. FLOWS87_AUDIT_KEY: the key itself (at least 32 bytes of text, e.g. `openssl rand -hex 32`);
2. FLOWS87_AUDIT_KEY_FILE: a file holding it (trailing whitespace ignored);
3. a SQLite store only: the file `<store>.audit-key` beside the database. When writing needs a
   key and none is configured, one is generated there (mode 0600) with a logged warning: a
   demo or a test then works without set-up, but whoever can read that directory holds the
   key, so a real deployment sets 1 or 2 to a place the database's users cannot read.
PostgreSQL stores have no such default: writing the audit log without a key is an error.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy import Connection, Engine

from flows87.errors import ConfigError

ENV_KEY = "FLOWS87_AUDIT_KEY"
ENV_KEY_FILE = "FLOWS87_AUDIT_KEY_FILE"
MIN_KEY_BYTES = 32
SUFFIX = ".audit-key"

log = logging.getLogger(__name__)


class AuditKeyError(ConfigError):
    """No usable audit key where one is needed."""


HINT = (
    f"set {ENV_KEY} (at least {MIN_KEY_BYTES} bytes, e.g. `openssl rand -hex 32`) or "
    f"{ENV_KEY_FILE} to a file holding it; see docs/audit.md"
)


def _checked(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(
            f"the audit key from {where} has {len(key)} bytes, fewer than {MIN_KEY_BYTES}",
            hint=HINT,
        )
    return key


def _read(path: Path, where: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key file {path}: {exc}", hint=HINT) from None
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the audit key file %s can be read by others (chmod 600 it)", path)
    return _checked(data.strip(), where)


def sidecar(bind: Engine | Connection) -> Path | None:
    """The default key file beside a SQLite store's file (None for other databases)."""
    url = bind.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve().with_name(Path(url.database).name + SUFFIX)


def _generate(path: Path) -> bytes:
    key = secrets.token_hex(32).encode("ascii")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process was first
        return _read(path, str(path))
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    log.warning(
        "no audit key configured: generated %s (fine for a demo; a deployment sets %s or %s "
        "to a key kept away from the database, see docs/audit.md)",
        path,
        ENV_KEY,
        ENV_KEY_FILE,
    )
    return key


def audit_key(bind: Engine | Connection, *, create: bool = False) -> bytes | None:
    """The key for this store, or None when there is none and `create` is false; with
    `create` (writing), a SQLite store gets a generated key file, any other store an error."""
    if os.environ.get(ENV_KEY):
        return _checked(os.environ[ENV_KEY].strip().encode("utf-8"), f"${ENV_KEY}")
    if os.environ.get(ENV_KEY_FILE):
        named = Path(os.environ[ENV_KEY_FILE]).expanduser()
        return _read(named, f"${ENV_KEY_FILE} ({named})")
    path = sidecar(bind)
    if path is not None and path.exists():
        return _read(path, str(path))
    if not create:
        return None
    if path is None:
        raise AuditKeyError(
            f"no audit key: writing the audit log of {bind.engine.url.get_backend_name()} "
            "store needs one",
            hint=HINT,
        )
    return _generate(path)


def require_key(bind: Engine | Connection) -> bytes:
    """The key for checking keyed entries or signing an anchor (never generated)."""
    key = audit_key(bind)
    if key is None:
        raise AuditKeyError("no audit key: keyed audit entries cannot be checked", hint=HINT)
    return key
