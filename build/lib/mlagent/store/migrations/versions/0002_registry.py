"""registry: models, model files, trainings, deployments, operations

Revision ID: 0002_registry
Revises: 0001_runtime
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_registry"
down_revision = "0001_runtime"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ml_models",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(200), nullable=False, index=True),
        sa.Column("modelname", sa.String(300), nullable=False),
        sa.Column("modelkind", sa.String(100), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "ml_model_files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(64), sa.ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "ml_trainings",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(200), nullable=False, index=True),
        sa.Column("model_id", sa.String(64), nullable=False, index=True),
        sa.Column("placement", sa.JSON(), nullable=False),
        sa.Column("backend", sa.String(20), nullable=False),
        sa.Column("job_id", sa.String(100), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("result_file_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "ml_deployments",
        sa.Column("pk", _ID, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False, index=True),
        sa.Column("file_id", sa.String(64), nullable=True),
        sa.Column("ownerid", sa.String(200), nullable=False),
        sa.Column("placement", sa.JSON(), nullable=False),
        sa.Column("inference_data", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("account", "deployment_id", name="uq_ml_deployments_account_id"),
    )
    op.create_table(
        "ml_operations",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("ownerid", sa.String(200), nullable=False),
        sa.Column("deployment_id", sa.String(200), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_ml_operations_account_owner", "ml_operations", ["account", "ownerid"])
    op.create_index("ix_ml_operations_account_deployment", "ml_operations", ["account", "deployment_id"])


def downgrade() -> None:
    op.drop_index("ix_ml_operations_account_deployment", "ml_operations")
    op.drop_index("ix_ml_operations_account_owner", "ml_operations")
    for name in ("ml_operations", "ml_deployments", "ml_trainings", "ml_model_files", "ml_models"):
        op.drop_table(name)
