"""The case store: cases and their evidence, users, workflow, hash-chained audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flows87.investigate.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLES = "role IN ('investigator', 'supervisor', 'admin')"
STATUSES = "status IN ('new', 'in_review', 'escalated', 'closed')"
DISPOSITIONS = "disposition IN ('reported', 'false_positive', 'no_further_action')"


def _case_fk() -> sa.ForeignKey:
    return sa.ForeignKey("cases.case_id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(ROLES, name="ck_users_role"),
    )
    op.create_table(
        "runs",
        sa.Column("interval_key", sa.String(128), primary_key=True),
        sa.Column("run_dir", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("n_cases", sa.Integer, nullable=False),
        sa.Column("loaded_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("rank", sa.Integer),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("anchor_account", sa.String(128), nullable=False),
        sa.Column("central_account", sa.String(128)),
        sa.Column("n_accounts", sa.Integer, nullable=False),
        sa.Column("n_signals", sa.Integer, nullable=False),
        sa.Column("n_transactions", sa.Integer, nullable=False),
        sa.Column("typologies", sa.Text, nullable=False),
        sa.Column("families", sa.Text, nullable=False),
        sa.Column("signal_ids", sa.Text, nullable=False),
        sa.Column("primary_typology", sa.String(64)),
        sa.Column("first_ts", UTCDateTime),
        sa.Column("last_ts", UTCDateTime),
        sa.Column("total_amount", sa.Float, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("first_interval", sa.String(128)),
        sa.Column("last_interval", sa.String(128)),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("evidence_updated_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("disposition", sa.String(32)),
        sa.Column("close_reason", sa.Text),
        sa.Column("closed_at", UTCDateTime),
        sa.Column("closed_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint(STATUSES, name="ck_cases_status"),
        sa.CheckConstraint("disposition IS NULL OR " + DISPOSITIONS, name="ck_cases_disposition"),
    )
    op.create_index("ix_cases_status_risk", "cases", ["status", "risk_score"])
    op.create_index("ix_cases_risk", "cases", ["risk_score"])
    op.create_index("ix_cases_assignee", "cases", ["assignee_id"])
    op.create_index("ix_cases_last_ts", "cases", ["last_ts"])
    op.create_table(
        "case_typologies",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("typology", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_case_typologies_typology", "case_typologies", ["typology", "case_id"])
    op.create_table(
        "case_intervals",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("interval_key", sa.String(128), primary_key=True),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("rank", sa.Integer),
    )
    op.create_table(
        "case_signals",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("signal_id", sa.String(128), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("typologies", sa.Text, nullable=False),
        sa.Column("txn_ids", sa.Text, nullable=False),
        sa.Column("window_start", UTCDateTime),
        sa.Column("window_end", UTCDateTime),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_index("ix_case_signals_signal", "case_signals", ["signal_id"])
    op.create_table(
        "case_accounts",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("risk_score", sa.Float),
        sa.Column("signal_risk", sa.Float),
        sa.Column("anomaly_score", sa.Float),
        sa.Column("n_signals", sa.Integer),
        sa.Column("families", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("kind", sa.String(32)),
        sa.Column("bank_id", sa.String(64)),
        sa.Column("party_id", sa.String(128)),
        sa.Column("country", sa.String(8)),
        sa.Column("opened_at", UTCDateTime),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_case_accounts_account", "case_accounts", ["account_id"])
    op.create_table(
        "case_transactions",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("txn_id", sa.String(128), primary_key=True),
        sa.Column("ts", UTCDateTime),
        sa.Column("src_account", sa.String(128)),
        sa.Column("dst_account", sa.String(128)),
        sa.Column("amount", sa.Float),
        sa.Column("currency", sa.String(8)),
        sa.Column("amount_base", sa.Float),
        sa.Column("channel", sa.String(32)),
        sa.Column("mcc", sa.String(8)),
        sa.Column("src_country", sa.String(8)),
        sa.Column("dst_country", sa.String(8)),
        sa.Column("location_id", sa.String(128)),
        sa.Column("device_id", sa.String(128)),
        sa.Column("memo", sa.Text),
    )
    op.create_index("ix_case_transactions_ts", "case_transactions", ["case_id", "ts"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("assigned_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("assigned_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_assignments_case_id", "assignments", ["case_id"])
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_notes_case_id", "notes", ["case_id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("decided_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("decided_at", UTCDateTime),
        sa.Column("comment", sa.Text),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected')", name="ck_approvals_state"
        ),
    )
    op.create_index("ix_approvals_case_id", "approvals", ["case_id"])
    op.create_table(
        "dispositions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("disposition", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_by_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.Column("approval_id", sa.Integer, sa.ForeignKey("approvals.id")),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("accounts", sa.Text, nullable=False),
        sa.Column("signal_ids", sa.Text, nullable=False),
        sa.CheckConstraint(DISPOSITIONS, name="ck_dispositions_disposition"),
    )
    op.create_index("ix_dispositions_case_id", "dispositions", ["case_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_type", sa.String(32), nullable=False),
        sa.Column("entity_id", sa.String(128)),
        sa.Column("before", sa.Text, nullable=False),
        sa.Column("after", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_entity", "audit_log", ["entity_type", "entity_id"])
    _append_only(op.get_bind().dialect.name)


def _append_only(dialect: str) -> None:
    """Refuse UPDATE and DELETE on audit_log in the database itself (the hash chain detects
    what someone with the rights to drop these triggers does anyway)."""
    if dialect == "sqlite":
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{what.lower()} BEFORE {what} ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION flows87_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION flows87_audit_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS flows87_audit_append_only()")
    for table in (
        "audit_log",
        "dispositions",
        "approvals",
        "notes",
        "assignments",
        "case_transactions",
        "case_accounts",
        "case_signals",
        "case_intervals",
        "case_typologies",
        "cases",
        "runs",
        "users",
    ):
        op.drop_table(table)
