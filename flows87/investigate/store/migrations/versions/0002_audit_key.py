"""A keyed audit chain (HMAC-SHA256), inserts that must extend it, the case's risk reason.

- audit_log.alg: how an entry's `hash` was made: 'sha256' (the entries written before this
  revision, a legacy prefix) or 'hmac-sha256' (keyed, see flows87.investigate.store.audit).
- A trigger refuses every insert that does not extend the chain: seq must be max(seq) + 1,
  prev_hash the newest entry's hash, the hash new, alg 'hmac-sha256'. On SQLite it is a BEFORE
  INSERT trigger, which also sees `INSERT OR REPLACE` (a replace of an existing seq or hash
  never gets to delete the old row).
- cases.risk_reason: why the case has its risk (from cases.parquet when the run writes it).
- On PostgreSQL with FLOWS87_DB_APP_ROLE set: that role gets what the app needs and on
  audit_log only SELECT and INSERT (flows87.investigate.store.roles).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
KEYED = "hmac-sha256"

_SQLITE_EXTEND_ONLY = f"""
CREATE TRIGGER audit_log_extend_only BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log)
  OR NEW.prev_hash IS NOT COALESCE(
       (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), '{GENESIS}')
  OR EXISTS (SELECT 1 FROM audit_log WHERE hash = NEW.hash)
  OR NEW.alg IS NOT '{KEYED}'
BEGIN SELECT RAISE(ABORT, 'audit_log: an insert must extend the chain'); END
"""

_PG_EXTEND_ONLY = f"""
CREATE FUNCTION flows87_audit_extend_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq integer;
    head_hash text;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := '{GENESIS}';
    END IF;
    IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash
       OR NEW.alg IS DISTINCT FROM '{KEYED}' THEN
        RAISE EXCEPTION 'audit_log: an insert must extend the chain (seq %, prev_hash %)',
            head_seq + 1, head_hash;
    END IF;
    RETURN NEW;
END $$
"""


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("cases", sa.Column("risk_reason", sa.Text))
    op.add_column(
        "audit_log",
        sa.Column("alg", sa.String(16), nullable=False, server_default="sha256"),
    )
    if dialect == "sqlite":
        op.execute(_SQLITE_EXTEND_ONLY)
    elif dialect == "postgresql":
        op.execute(_PG_EXTEND_ONLY)
        op.execute(
            "CREATE TRIGGER audit_log_extend_only BEFORE INSERT ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION flows87_audit_extend_only()"
        )
        from flows87.investigate.store.roles import app_role_from_env, grant_app_role

        role = app_role_from_env()
        if role:
            grant_app_role(op.get_bind(), role)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_extend_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS flows87_audit_extend_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_extend_only")
    op.drop_column("audit_log", "alg")
    op.drop_column("cases", "risk_reason")
