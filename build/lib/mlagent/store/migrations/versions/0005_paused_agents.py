"""Operator API: paused agents survive a restart (one row per paused agent).

Revision ID: 0005_paused_agents
Revises: 0002_operator
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_paused_agents"
down_revision = "0002_operator"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paused_agents",
        sa.Column("agent", sa.String(100), primary_key=True),
        sa.Column("paused_by", sa.String(200), nullable=False),
        sa.Column("paused_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paused_agents")
