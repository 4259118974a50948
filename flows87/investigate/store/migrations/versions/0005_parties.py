"""Resolved parties on the case page: the parties holding a case's accounts (their accounts at
every bank, the names they were written as) and the matched record pairs that made them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _case_fk() -> sa.ForeignKey:
    return sa.ForeignKey("cases.case_id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "case_parties",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("party_id", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16)),
        sa.Column("n_records", sa.Integer, nullable=False),
        sa.Column("n_links", sa.Integer, nullable=False),
        sa.Column("names", sa.Text, nullable=False),
        sa.Column("accounts", sa.Text, nullable=False),
    )
    op.create_table(
        "case_party_links",
        sa.Column("case_id", sa.String(64), _case_fk(), primary_key=True),
        sa.Column("party_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("record_l", sa.Text, nullable=False),
        sa.Column("record_r", sa.Text, nullable=False),
        sa.Column("name_l", sa.Text),
        sa.Column("name_r", sa.Text),
        sa.Column("account_l", sa.String(128)),
        sa.Column("account_r", sa.String(128)),
        sa.Column("bank_l", sa.String(64)),
        sa.Column("bank_r", sa.String(64)),
        sa.Column("probability", sa.Float),
        sa.Column("match_weight", sa.Float),
        sa.Column("explanation", sa.Text),
        sa.Column("n_pairs", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_party_links")
    op.drop_table("case_parties")
