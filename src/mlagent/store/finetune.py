"""Tables and repository for uploaded files and fine-tuning jobs (seed 001's ML API)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from .db import rowcount
from .leases import JobLeases
from .tables import Base


class UploadedFile(Base):
    __tablename__ = "uploaded_files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(String(50))
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class FineTuningJob(Base):
    __tablename__ = "fine_tuning_jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    model_id: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), index=True)
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64), nullable=True)
    suffix: Mapped[str | None] = mapped_column(String(100), nullable=True)
    compute_config: Mapped[dict[str, Any]] = mapped_column(JSON)
    backend: Mapped[str] = mapped_column(String(20))
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    output_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # The hf backend's references (namespace, dataset/model repos, HF job id and URL, flavor);
    # never a token. Costs are USD from the price table: the estimate at creation, the actual
    # (runtime × flavor price) once the Hub reports the job finished.
    hub: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    estimated_cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The replica running a local job and its heartbeat (store/leases.py); migration 0007.
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class FineTuneStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions
        # Only local jobs run on a replica; an hf job runs on at the Hub whoever started it.
        self.leases = JobLeases(sessions, FineTuningJob, ("created", "queued", "running"),
                                FineTuningJob.backend == "local")

    async def add_file(self, row: UploadedFile) -> None:
        async with self._sm() as db, db.begin():
            db.add(row)

    async def file(self, file_id: str) -> UploadedFile | None:
        async with self._sm() as db:
            return await db.get(UploadedFile, file_id)

    async def files(self, account: str) -> list[UploadedFile]:
        async with self._sm() as db:
            q = select(UploadedFile).where(UploadedFile.account == account).order_by(UploadedFile.created_at)
            return list((await db.execute(q)).scalars())

    async def add_job(self, row: FineTuningJob) -> None:
        async with self._sm() as db, db.begin():
            db.add(row)

    async def job(self, job_id: str) -> FineTuningJob | None:
        async with self._sm() as db:
            return await db.get(FineTuningJob, job_id)

    async def jobs(self, account: str | None) -> list[FineTuningJob]:
        async with self._sm() as db:
            q = select(FineTuningJob).order_by(FineTuningJob.created_at.desc(), FineTuningJob.id)
            if account is not None:
                q = q.where(FineTuningJob.account == account)
            return list((await db.execute(q)).scalars())

    async def by_model(self, account: str, fine_tuned_model: str) -> FineTuningJob | None:
        async with self._sm() as db:
            q = select(FineTuningJob).where(FineTuningJob.account == account,
                                            FineTuningJob.fine_tuned_model == fine_tuned_model)
            return (await db.execute(q)).scalars().first()

    async def transition(self, job_id: str, from_statuses: tuple[str, ...], to: str, **values: Any) -> bool:
        """Move a job between statuses atomically; False when it was not in `from_statuses`."""
        async with self._sm() as db, db.begin():
            result = await db.execute(
                update(FineTuningJob)
                .where(FineTuningJob.id == job_id, FineTuningJob.status.in_(from_statuses))
                .values(status=to, updated_at=time.time(), **values)
            )
            return rowcount(result) == 1

    async def set_metrics(self, job_id: str, metrics: dict[str, Any]) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(update(FineTuningJob).where(FineTuningJob.id == job_id)
                             .values(metrics=metrics, updated_at=time.time()))

    async def update(self, job_id: str, **values: Any) -> None:
        """Set columns whatever the status (the hf backend's references, a late actual cost)."""
        async with self._sm() as db, db.begin():
            await db.execute(update(FineTuningJob).where(FineTuningJob.id == job_id)
                             .values(updated_at=time.time(), **values))
