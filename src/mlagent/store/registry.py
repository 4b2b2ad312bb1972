"""Repository of the registry tables: the only code that queries them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import rowcount
from .leases import JobLeases
from .registry_tables import DeploymentRow, MLModelRow, ModelFileRow, OperationRow, TrainingRow

ACTIVE_DEPLOYMENT = ("pending", "running")
_INSERT_OPERATIONS = insert(cast(Table, OperationRow.__table__))


class DuplicateError(Exception):
    """A unique key (e.g. an account's deployment id) is already taken."""


class RegistryStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions
        self.training_leases = JobLeases(sessions, TrainingRow, ("queued", "running"))

    # -- models ---------------------------------------------------------------------------------
    async def add_model(self, row: MLModelRow) -> MLModelRow:
        async with self._sm() as db, db.begin():
            db.add(row)
        return row

    async def get_model(self, account: str, model_id: str) -> MLModelRow | None:
        async with self._sm() as db:
            row = await db.get(MLModelRow, model_id)
            return row if row is not None and row.account == account else None

    async def list_models(self, account: str, skip: int = 0, limit: int = 100, kind: str | None = None
                          ) -> list[MLModelRow]:
        q = select(MLModelRow).where(MLModelRow.account == account)
        if kind is not None:
            q = q.where(func.lower(MLModelRow.modelkind) == kind.lower())
        q = q.order_by(MLModelRow.created_at, MLModelRow.id).offset(skip).limit(limit)
        async with self._sm() as db:
            return list((await db.execute(q)).scalars())

    async def update_model(self, account: str, model_id: str, **values: Any) -> MLModelRow | None:
        async with self._sm() as db, db.begin():
            row = await db.get(MLModelRow, model_id)
            if row is None or row.account != account:
                return None
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = time.time()
        return row

    async def delete_model(self, account: str, model_id: str) -> list[str]:
        """Delete the model and its file rows; returns the sha256 of the removed files."""
        async with self._sm() as db, db.begin():
            row = await db.get(MLModelRow, model_id)
            if row is None or row.account != account:
                return []
            shas = list((await db.execute(select(ModelFileRow.sha256).where(ModelFileRow.model_id == model_id)))
                        .scalars())
            await db.execute(delete(ModelFileRow).where(ModelFileRow.model_id == model_id))
            await db.delete(row)
        return shas

    # -- files ----------------------------------------------------------------------------------
    async def add_file(self, row: ModelFileRow) -> ModelFileRow:
        """Insert with the next version number for (model, kind)."""
        async with self._sm() as db, db.begin():
            current = (await db.execute(select(func.max(ModelFileRow.version)).where(
                ModelFileRow.model_id == row.model_id, ModelFileRow.kind == row.kind))).scalar_one()
            row.version = (current or 0) + 1
            db.add(row)
        return row

    async def list_files(self, model_id: str) -> list[ModelFileRow]:
        async with self._sm() as db:
            q = select(ModelFileRow).where(ModelFileRow.model_id == model_id).order_by(
                ModelFileRow.kind, ModelFileRow.version)
            return list((await db.execute(q)).scalars())

    async def get_file(self, file_id: str) -> ModelFileRow | None:
        async with self._sm() as db:
            return await db.get(ModelFileRow, file_id)

    async def latest_file(self, model_id: str, kind: str) -> ModelFileRow | None:
        async with self._sm() as db:
            q = select(ModelFileRow).where(ModelFileRow.model_id == model_id, ModelFileRow.kind == kind).order_by(
                ModelFileRow.version.desc()).limit(1)
            return (await db.execute(q)).scalars().first()

    async def sha_in_use(self, sha256: str) -> bool:
        async with self._sm() as db:
            q = select(func.count()).select_from(ModelFileRow).where(ModelFileRow.sha256 == sha256)
            return int((await db.execute(q)).scalar_one()) > 0

    # -- trainings ------------------------------------------------------------------------------
    async def add_training(self, row: TrainingRow) -> TrainingRow:
        async with self._sm() as db, db.begin():
            db.add(row)
        return row

    async def get_training(self, account: str, training_id: str) -> TrainingRow | None:
        async with self._sm() as db:
            row = await db.get(TrainingRow, training_id)
            return row if row is not None and row.account == account else None

    async def list_trainings(self, account: str, skip: int = 0, limit: int = 100) -> list[TrainingRow]:
        q = select(TrainingRow).where(TrainingRow.account == account).order_by(
            TrainingRow.created_at, TrainingRow.id).offset(skip).limit(limit)
        async with self._sm() as db:
            return list((await db.execute(q)).scalars())

    async def update_training(self, training_id: str, **values: Any) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(update(TrainingRow).where(TrainingRow.id == training_id).values(
                updated_at=time.time(), **values))

    # -- deployments ----------------------------------------------------------------------------
    async def add_deployment(self, row: DeploymentRow) -> DeploymentRow:
        try:
            async with self._sm() as db, db.begin():
                db.add(row)
        except IntegrityError as exc:
            raise DuplicateError(row.deployment_id) from exc
        return row

    async def get_deployment(self, account: str, deployment_id: str) -> DeploymentRow | None:
        async with self._sm() as db:
            q = select(DeploymentRow).where(DeploymentRow.account == account,
                                            DeploymentRow.deployment_id == deployment_id)
            return (await db.execute(q)).scalars().first()

    async def list_deployments(self, account: str, skip: int = 0, limit: int = 100) -> list[DeploymentRow]:
        q = select(DeploymentRow).where(DeploymentRow.account == account).order_by(
            DeploymentRow.created_at, DeploymentRow.pk).offset(skip).limit(limit)
        async with self._sm() as db:
            return list((await db.execute(q)).scalars())

    async def active_deployments(self, account: str | None = None, model_id: str | None = None
                                 ) -> list[DeploymentRow]:
        q = select(DeploymentRow).where(DeploymentRow.status.in_(ACTIVE_DEPLOYMENT))
        if account is not None:
            q = q.where(DeploymentRow.account == account)
        if model_id is not None:
            q = q.where(DeploymentRow.model_id == model_id)
        async with self._sm() as db:
            return list((await db.execute(q)).scalars())

    async def set_deployment_status(self, pk: int, status: str, reason: str | None = None,
                                    only_from: Sequence[str] | None = None) -> bool:
        q = update(DeploymentRow).where(DeploymentRow.pk == pk)
        if only_from is not None:
            q = q.where(DeploymentRow.status.in_(tuple(only_from)))
        async with self._sm() as db, db.begin():
            result = await db.execute(q.values(status=status, reason=reason, updated_at=time.time()))
            return rowcount(result) > 0

    # -- operations -----------------------------------------------------------------------------
    async def add_operations(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert (one executemany) of operation values: the predict path's batches. On the
        table, not the ORM class: the ORM's bulk insert walks every record in Python first."""
        if not rows:
            return
        async with self._sm() as db, db.begin():
            await db.execute(_INSERT_OPERATIONS, list(rows))

    async def add_operation(self, row: OperationRow) -> OperationRow:
        async with self._sm() as db, db.begin():
            db.add(row)
        return row

    async def list_operations(self, account: str, *, ownerid: str | None = None, deployment_id: str | None = None,
                              skip: int = 0, limit: int = 1000) -> list[OperationRow]:
        q = select(OperationRow).where(OperationRow.account == account)
        if ownerid is not None:
            q = q.where(OperationRow.ownerid == ownerid)
        if deployment_id is not None:
            q = q.where(OperationRow.deployment_id == deployment_id)
        q = q.order_by(OperationRow.id).offset(skip).limit(limit)
        async with self._sm() as db:
            return list((await db.execute(q)).scalars())
