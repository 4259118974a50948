"""Case transactions by account: the account page and the money graph's "expand" look up an
account's transfers across every case, which without these indexes scans the whole table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_transactions_src", "case_transactions", ["src_account"])
    op.create_index("ix_case_transactions_dst", "case_transactions", ["dst_account"])


def downgrade() -> None:
    op.drop_index("ix_case_transactions_dst", table_name="case_transactions")
    op.drop_index("ix_case_transactions_src", table_name="case_transactions")
