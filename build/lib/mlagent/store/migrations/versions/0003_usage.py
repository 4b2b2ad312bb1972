"""usage: LLM call log, tool charges, thread token budgets, counter resets

Revision ID: 0003_usage
Revises: 0001_runtime
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_usage"
down_revision = "0001_runtime"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "llm_calls",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_llm_calls_account", "llm_calls", ["account"])
    op.create_index("ix_llm_calls_thread_id", "llm_calls", ["thread_id"])
    op.create_table(
        "usage_charges",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=True),
        sa.Column("estimate_usd", sa.Float(), nullable=False),
        sa.Column("actual_usd", sa.Float(), nullable=True),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("settled_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_charges_account", "usage_charges", ["account"])
    op.create_index("ix_usage_charges_session_id", "usage_charges", ["session_id"])
    op.create_table(
        "thread_budgets",
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("max_tokens", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("thread_id"),
    )
    op.create_index("ix_thread_budgets_account", "thread_budgets", ["account"])
    op.create_table(
        "usage_resets",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("after_id", sa.BigInteger(), nullable=False),
        sa.Column("reset_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )


def downgrade() -> None:
    op.drop_table("usage_resets")
    op.drop_index("ix_thread_budgets_account", table_name="thread_budgets")
    op.drop_table("thread_budgets")
    op.drop_index("ix_usage_charges_session_id", table_name="usage_charges")
    op.drop_index("ix_usage_charges_account", table_name="usage_charges")
    op.drop_table("usage_charges")
    op.drop_index("ix_llm_calls_thread_id", table_name="llm_calls")
    op.drop_index("ix_llm_calls_account", table_name="llm_calls")
    op.drop_table("llm_calls")
