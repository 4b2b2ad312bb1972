"""Tables and repository for uploaded files and fine-tuning jobs (seed 001's ML API).

The repository implements `protocols.FineTunes` and returns `records.UploadedFileRecord` /
`records.FineTuningJobRecord` values, never the ORM rows below (which stay for Alembic,
`leases.JobLeases` and `health.py`)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

from sqlalchemy import JSON, Float, Integer, String, Table, Text, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from .db import rowcount
from .leases import JobLeases
from .records import FineTuningJobRecord, UploadedFileRecord
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


_FILES = cast(Table, UploadedFile.__table__)
_JOBS = cast(Table, FineTuningJob.__table__)
# Records are built positionally from rows in table column order (checked once, here).
if (tuple(f.name for f in dataclasses.fields(UploadedFileRecord)) != tuple(_FILES.c.keys())
        or tuple(f.name for f in dataclasses.fields(FineTuningJobRecord)) != tuple(_JOBS.c.keys())):
    raise RuntimeError("store/records.py fields differ from the fine-tuning tables' columns")  # pragma: no cover


def _values(record: UploadedFileRecord | FineTuningJobRecord) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


class FineTuneStore:
    """Uploaded files and fine-tuning jobs on SQLite or PostgreSQL (`protocols.FineTunes`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions
        self._engine = sessions.kw["bind"]
        # Only local jobs run on a replica; an hf job runs on at the Hub whoever started it.
        self.leases = JobLeases(sessions, FineTuningJob, ("created", "queued", "running"),
                                FineTuningJob.backend == "local")

    async def add_file(self, file: UploadedFileRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(_FILES), _values(file))

    async def file(self, file_id: str) -> UploadedFileRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(*_FILES.c).where(_FILES.c.id == file_id))).first()
        return None if row is None else UploadedFileRecord(*row)

    async def files(self, account: str) -> list[UploadedFileRecord]:
        q = select(*_FILES.c).where(_FILES.c.account == account).order_by(_FILES.c.created_at)
        async with self._engine.connect() as conn:
            return [UploadedFileRecord(*r) for r in await conn.execute(q)]

    async def add_job(self, job: FineTuningJobRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(_JOBS), _values(job))

    async def job(self, job_id: str) -> FineTuningJobRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(*_JOBS.c).where(_JOBS.c.id == job_id))).first()
        return None if row is None else FineTuningJobRecord(*row)

    async def jobs(self, account: str | None) -> list[FineTuningJobRecord]:
        q = select(*_JOBS.c).order_by(_JOBS.c.created_at.desc(), _JOBS.c.id)
        if account is not None:
            q = q.where(_JOBS.c.account == account)
        async with self._engine.connect() as conn:
            return [FineTuningJobRecord(*r) for r in await conn.execute(q)]

    async def by_model(self, account: str, fine_tuned_model: str) -> FineTuningJobRecord | None:
        q = select(*_JOBS.c).where(_JOBS.c.account == account, _JOBS.c.fine_tuned_model == fine_tuned_model)
        async with self._engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return None if row is None else FineTuningJobRecord(*row)

    async def transition(self, job_id: str, from_statuses: tuple[str, ...], to: str, **values: Any) -> bool:
        """Move a job between statuses atomically; False when it was not in `from_statuses`."""
        q = (update(_JOBS).where(_JOBS.c.id == job_id, _JOBS.c.status.in_(from_statuses))
             .values(status=to, updated_at=time.time(), **values))
        async with self._engine.begin() as conn:
            return rowcount(await conn.execute(q)) == 1

    async def set_metrics(self, job_id: str, metrics: dict[str, Any]) -> None:
        await self.update(job_id, metrics=metrics)

    async def update(self, job_id: str, **values: Any) -> None:
        """Set columns whatever the status (the hf backend's references, a late actual cost)."""
        async with self._engine.begin() as conn:
            await conn.execute(update(_JOBS).where(_JOBS.c.id == job_id).values(updated_at=time.time(), **values))
