"""The learned scorer on the case page (issue 16): each case's learned score, its risk before the
blend, the model's reasons (JSON list of sentences) and the model's version; `learned_models`
keeps what each model was trained on (from RUN/learning/model/model.meta.json).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flows87.investigate.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("learned_score", sa.Float))
    op.add_column("cases", sa.Column("today_score", sa.Float))
    op.add_column("cases", sa.Column("learned_reasons", sa.Text))
    op.add_column("cases", sa.Column("model_version", sa.String(64)))
    op.create_table(
        "learned_models",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("method", sa.String(16)),
        sa.Column("positives", sa.Integer),
        sa.Column("negatives", sa.Integer),
        sa.Column("labelled", sa.Integer),
        sa.Column("cutoff", sa.String(64)),
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("loaded_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("learned_models")
    op.drop_column("cases", "model_version")
    op.drop_column("cases", "learned_reasons")
    op.drop_column("cases", "today_score")
    op.drop_column("cases", "learned_score")
