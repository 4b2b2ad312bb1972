"""finetune_hub: the hf backend's Hub references and the job's estimated and actual cost

Revision ID: 0004_finetune_hub
Revises: 0002_finetune
"""

import sqlalchemy as sa
from alembic import op

revision = '0004_finetune_hub'
down_revision = '0002_finetune'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('fine_tuning_jobs', sa.Column('hub', sa.JSON(), nullable=True))
    op.add_column('fine_tuning_jobs', sa.Column('estimated_cost_usd', sa.Float(), nullable=True))
    op.add_column('fine_tuning_jobs', sa.Column('cost_usd', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('fine_tuning_jobs') as batch:
        batch.drop_column('cost_usd')
        batch.drop_column('estimated_cost_usd')
        batch.drop_column('hub')
