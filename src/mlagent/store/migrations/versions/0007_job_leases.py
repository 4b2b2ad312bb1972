"""Job leases: the replica running a local job and its heartbeat (store/leases.py), so a
replica starting up fails only its own dead jobs and those of a replica that stopped.

Rows from before have no lease: the next start-up treats them as before (failed).

Revision ID: 0007_job_leases
Revises: 0006_single_head
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_job_leases"
down_revision = "0006_single_head"
branch_labels = None
depends_on = None

TABLES = ("ml_trainings", "fine_tuning_jobs")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
            batch.add_column(sa.Column("lease_expires_at", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lease_expires_at")
            batch.drop_column("lease_owner")
