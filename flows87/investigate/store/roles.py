"""PostgreSQL roles: the migrations' owner keeps the schema, the app gets only what it needs.

The app role may read and write the case tables but on `audit_log` only SELECT and INSERT: it
cannot drop or disable the triggers (only the owner can), UPDATE, DELETE or TRUNCATE the log.
Run by migration 0002 when FLOWS87_DB_APP_ROLE names the role, or at any time by
`flows87 audit grant --app-role NAME` (as the owner; idempotent). Default privileges make the
tables later migrations create reachable to the app role too.
"""

from __future__ import annotations

import os
import re

from sqlalchemy import Connection, text

from flows87.errors import ConfigError

ENV_APP_ROLE = "FLOWS87_DB_APP_ROLE"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def app_role_from_env() -> str | None:
    return os.environ.get(ENV_APP_ROLE) or None


def _quoted(connection: Connection, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{name!r} is not a PostgreSQL role name", hint="e.g. flows87_app")
    return connection.dialect.identifier_preparer.quote_identifier(name)


def grant_app_role(connection: Connection, role: str) -> None:
    """Grant `role` the app's rights in the current schema (PostgreSQL only)."""
    if connection.dialect.name != "postgresql":
        raise ConfigError("database roles are a PostgreSQL feature: SQLite has none")
    exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists.first() is None:
        raise ConfigError(
            f"there is no PostgreSQL role {role!r}",
            hint=f"CREATE ROLE {role} LOGIN PASSWORD '...' (as a superuser) first",
        )
    r = _quoted(connection, role)
    schema = _quoted(connection, str(connection.execute(text("SELECT current_schema()")).scalar()))
    for sql in (
        f"GRANT USAGE ON SCHEMA {schema} TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {r}",
        f"REVOKE ALL ON audit_log FROM {r}",
        f"GRANT SELECT, INSERT ON audit_log TO {r}",
        f"REVOKE ALL ON alembic_version FROM {r}",
        f"GRANT SELECT ON alembic_version TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {r}",
    ):
        connection.execute(text(sql))
