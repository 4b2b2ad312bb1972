"""finetune: uploaded files and fine-tuning jobs (seed 001's ML API)

Revision ID: 0002_finetune
Revises: 0001_runtime
"""

import sqlalchemy as sa
from alembic import op

revision = '0002_finetune'
down_revision = '0001_runtime'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('uploaded_files',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('filename', sa.String(length=300), nullable=False),
    sa.Column('purpose', sa.String(length=50), nullable=False),
    sa.Column('bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_uploaded_files_account', 'uploaded_files', ['account'])
    op.create_table('fine_tuning_jobs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('training_file', sa.String(length=64), nullable=False),
    sa.Column('validation_file', sa.String(length=64), nullable=True),
    sa.Column('suffix', sa.String(length=100), nullable=True),
    sa.Column('compute_config', sa.JSON(), nullable=False),
    sa.Column('backend', sa.String(length=20), nullable=False),
    sa.Column('fine_tuned_model', sa.String(length=300), nullable=True),
    sa.Column('output_dir', sa.Text(), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_fine_tuning_jobs_account', 'fine_tuning_jobs', ['account'])
    op.create_index('ix_fine_tuning_jobs_status', 'fine_tuning_jobs', ['status'])


def downgrade() -> None:
    op.drop_table('fine_tuning_jobs')
    op.drop_table('uploaded_files')
