"""Operator API: the agent a turn was addressed to (threads with several participants).

Revision ID: 0002_operator
Revises: 0001_runtime
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_operator"
down_revision = "0001_runtime"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("agent", sa.String(100), nullable=True))
    op.create_index("ix_turns_agent", "turns", ["agent"])


def downgrade() -> None:
    op.drop_index("ix_turns_agent", table_name="turns")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("agent")
