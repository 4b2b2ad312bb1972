"""Tables of the model registry: models, their files, training runs, deployments, operations.

They share `tables.Base`, so Alembic sees one metadata; migration `0002_registry` creates them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base


class MLModelRow(Base):
    """A registered model: the seed's MLModelCreate fields in `spec`, owned by `account`."""

    __tablename__ = "ml_models"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    modelname: Mapped[str] = mapped_column(String(300))
    modelkind: Mapped[str] = mapped_column(String(100))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ModelFileRow(Base):
    """An uploaded (or trained) artifact; the bytes live content-addressed under the data dir."""

    __tablename__ = "ml_model_files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("ml_models.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[float] = mapped_column(Float)


class TrainingRow(Base):
    """One run of a model's training code on its data, as a job on a job backend."""

    __tablename__ = "ml_trainings"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    placement: Mapped[dict[str, Any]] = mapped_column(JSON)
    backend: Mapped[str] = mapped_column(String(20))
    job_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    result_file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # The replica running it and its heartbeat (store/leases.py); migration 0007.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class DeploymentRow(Base):
    """A deployment of a model file; `deployment_id` is unique per account, not globally."""

    __tablename__ = "ml_deployments"
    pk: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(200))
    deployment_id: Mapped[str] = mapped_column(String(200))
    model_id: Mapped[str] = mapped_column(String(64), index=True)
    file_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ownerid: Mapped[str] = mapped_column(String(200))
    placement: Mapped[dict[str, Any]] = mapped_column(JSON)
    inference_data: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("account", "deployment_id", name="uq_ml_deployments_account_id"),)


class OperationRow(Base):
    """One inference operation: recorded by every predict call, or posted by a client."""

    __tablename__ = "ml_operations"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(200))
    ownerid: Mapped[str] = mapped_column(String(200))
    deployment_id: Mapped[str] = mapped_column(String(200))
    model_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index("ix_ml_operations_account_owner", "account", "ownerid"),
        Index("ix_ml_operations_account_deployment", "account", "deployment_id"),
    )
