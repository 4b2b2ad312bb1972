"""Fine-tuning files and job directories are named by blob key, not by absolute path
(finetune/stored.py): `uploaded_files.path` becomes `files/<id>` and a local job's
`fine_tuning_jobs.output_dir` becomes `finetune/<id>` — where both already were under
`MLAGENT_DATA_DIR`, which is the default blob store's root, so no file moves.

Revision ID: 0008_finetune_keys
Revises: 0007_job_leases
"""

from __future__ import annotations

from alembic import op

revision = "0008_finetune_keys"
down_revision = "0007_job_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE uploaded_files SET path = 'files/' || id")
    op.execute("UPDATE fine_tuning_jobs SET output_dir = 'finetune/' || id WHERE output_dir IS NOT NULL")


def downgrade() -> None:
    pass  # the keys name the same files relative to the data directory; no absolute path is recoverable here
