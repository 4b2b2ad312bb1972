"""Join the four branches the first issues grew into one head; every later revision follows it.

Databases made before this revision carry up to four rows in ``alembic_version``; upgrading
to ``head`` collapses them into this one. No schema change.

Revision ID: 0006_single_head
Revises: 0002_registry, 0003_usage, 0004_finetune_hub, 0005_paused_agents
"""

from __future__ import annotations

revision = "0006_single_head"
down_revision = ("0002_registry", "0003_usage", "0004_finetune_hub", "0005_paused_agents")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
