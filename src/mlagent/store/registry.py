"""Repository of the registry tables (models, files, trainings, deployments, operations): the
only code that queries them.

It implements `protocols.ModelRegistry` and returns `records.*Record` values, never ORM rows;
every statement is SQLAlchemy Core on a connection, and a record is built from the row read
(`UPDATE ... RETURNING` where a write answers the new values, so no second read)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, TypeVar, cast

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import rowcount
from .leases import JobLeases
from .protocols import DuplicateError
from .records import DeploymentRecord, ModelFileRecord, ModelRecord, OperationRecord, TrainingRecord
from .registry_tables import DeploymentRow, MLModelRow, ModelFileRow, OperationRow, TrainingRow

ACTIVE_DEPLOYMENT = ("pending", "running")

_MODELS = cast(Table, MLModelRow.__table__)
_FILES = cast(Table, ModelFileRow.__table__)
_TRAININGS = cast(Table, TrainingRow.__table__)
_DEPLOYMENTS = cast(Table, DeploymentRow.__table__)
_OPERATIONS = cast(Table, OperationRow.__table__)
_OPERATION_COLUMNS = tuple(c.key for c in _OPERATIONS.c if c.key != "id")
_operations_sql: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]] = {}


def _operations_insert(dialect: Any) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]]]:
    """(the operations INSERT in the driver's own parameter style, a row dict -> its parameter
    tuple in that statement's order), compiled once per dialect."""
    key = f"{dialect.name}+{dialect.driver}"
    found = _operations_sql.get(key)
    if found is None:
        compiled = insert(_OPERATIONS).compile(dialect=dialect, column_keys=list(_OPERATION_COLUMNS),
                                               for_executemany=True)
        order = tuple(compiled.positiontup or ())
        # SQLite's Float converts a non-float to float: created_at is always time.time()'s float.
        if sorted(order) != sorted(_OPERATION_COLUMNS) or set(compiled._bind_processors) - {"created_at"} \
                or compiled.effective_returning:  # pragma: no cover - a schema or SQLAlchemy change
            raise RuntimeError("the operations INSERT needs parameter processing: use Core's execute")
        found = _operations_sql[key] = (compiled.string, itemgetter(*order))
    return found

# Records are built positionally from rows in table column order: the field names must be the
# column names, in that order (checked here, once, rather than per row).
_RECORDS: tuple[tuple[type, Table], ...] = (
    (ModelRecord, _MODELS), (ModelFileRecord, _FILES), (TrainingRecord, _TRAININGS),
    (DeploymentRecord, _DEPLOYMENTS), (OperationRecord, _OPERATIONS))
if any(tuple(f.name for f in dataclasses.fields(record)) != tuple(table.c.keys())
       for record, table in _RECORDS):  # pragma: no cover - a schema edit
    raise RuntimeError("store/records.py fields differ from the registry tables' columns")

R = TypeVar("R")


def _values(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


def _one(kind: Callable[..., R], row: Row[Any] | None) -> R | None:
    return None if row is None else kind(*row)


class RegistryStore:
    """The model registry's tables on SQLite or PostgreSQL (`protocols.ModelRegistry`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions
        self._engine = sessions.kw["bind"]
        self.training_leases = JobLeases(sessions, TrainingRow, ("queued", "running"))

    # -- models ---------------------------------------------------------------------------------
    async def add_model(self, model: ModelRecord) -> ModelRecord:
        async with self._engine.begin() as conn:
            await conn.execute(insert(_MODELS), _values(model))
        return model

    async def get_model(self, account: str, model_id: str) -> ModelRecord | None:
        q = select(*_MODELS.c).where(_MODELS.c.id == model_id, _MODELS.c.account == account)
        async with self._engine.connect() as conn:
            return _one(ModelRecord, (await conn.execute(q)).first())

    async def list_models(self, account: str, skip: int = 0, limit: int = 100, kind: str | None = None
                          ) -> list[ModelRecord]:
        q = select(*_MODELS.c).where(_MODELS.c.account == account)
        if kind is not None:
            q = q.where(func.lower(_MODELS.c.modelkind) == kind.lower())
        q = q.order_by(_MODELS.c.created_at, _MODELS.c.id).offset(skip).limit(limit)
        async with self._engine.connect() as conn:
            return [ModelRecord(*r) for r in await conn.execute(q)]

    async def update_model(self, account: str, model_id: str, **values: Any) -> ModelRecord | None:
        """Set `values` (and `updated_at`); None when the account has no such model."""
        q = (update(_MODELS).where(_MODELS.c.id == model_id, _MODELS.c.account == account)
             .values(updated_at=time.time(), **values).returning(*_MODELS.c))
        async with self._engine.begin() as conn:
            return _one(ModelRecord, (await conn.execute(q)).first())

    async def delete_model(self, account: str, model_id: str) -> list[str]:
        """Delete the model and its file rows; returns the sha256 of the removed files."""
        owned = select(_MODELS.c.id).where(_MODELS.c.id == model_id, _MODELS.c.account == account)
        async with self._engine.begin() as conn:
            shas = (await conn.execute(delete(_FILES).where(_FILES.c.model_id.in_(owned))
                                       .returning(_FILES.c.sha256))).scalars().all()
            await conn.execute(delete(_MODELS).where(_MODELS.c.id == model_id, _MODELS.c.account == account))
        return list(shas)

    # -- files ----------------------------------------------------------------------------------
    async def add_file(self, *, id: str, model_id: str, kind: str, filename: str, size: int, sha256: str,
                       source: str, created_at: float | None = None) -> ModelFileRecord:
        """Insert with the next version number for (model, kind)."""
        values: dict[str, Any] = {"id": id, "model_id": model_id, "kind": kind, "filename": filename, "size": size,
                  "sha256": sha256, "source": source, "created_at": time.time() if created_at is None else created_at}
        async with self._engine.begin() as conn:
            current = (await conn.execute(select(func.max(_FILES.c.version)).where(
                _FILES.c.model_id == model_id, _FILES.c.kind == kind))).scalar_one()
            values["version"] = (current or 0) + 1
            await conn.execute(insert(_FILES), values)
        return ModelFileRecord(**values)

    async def list_files(self, model_id: str) -> list[ModelFileRecord]:
        q = select(*_FILES.c).where(_FILES.c.model_id == model_id).order_by(_FILES.c.kind, _FILES.c.version)
        async with self._engine.connect() as conn:
            return [ModelFileRecord(*r) for r in await conn.execute(q)]

    async def get_file(self, file_id: str) -> ModelFileRecord | None:
        async with self._engine.connect() as conn:
            return _one(ModelFileRecord, (await conn.execute(select(*_FILES.c).where(_FILES.c.id == file_id))).first())

    async def latest_file(self, model_id: str, kind: str) -> ModelFileRecord | None:
        q = (select(*_FILES.c).where(_FILES.c.model_id == model_id, _FILES.c.kind == kind)
             .order_by(_FILES.c.version.desc()).limit(1))
        async with self._engine.connect() as conn:
            return _one(ModelFileRecord, (await conn.execute(q)).first())

    async def sha_in_use(self, sha256: str) -> bool:
        q = select(func.count()).select_from(_FILES).where(_FILES.c.sha256 == sha256)
        async with self._engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one()) > 0

    # -- trainings ------------------------------------------------------------------------------
    async def add_training(self, training: TrainingRecord) -> TrainingRecord:
        async with self._engine.begin() as conn:
            await conn.execute(insert(_TRAININGS), _values(training))
        return training

    async def get_training(self, account: str, training_id: str) -> TrainingRecord | None:
        q = select(*_TRAININGS.c).where(_TRAININGS.c.id == training_id, _TRAININGS.c.account == account)
        async with self._engine.connect() as conn:
            return _one(TrainingRecord, (await conn.execute(q)).first())

    async def list_trainings(self, account: str, skip: int = 0, limit: int = 100) -> list[TrainingRecord]:
        q = (select(*_TRAININGS.c).where(_TRAININGS.c.account == account)
             .order_by(_TRAININGS.c.created_at, _TRAININGS.c.id).offset(skip).limit(limit))
        async with self._engine.connect() as conn:
            return [TrainingRecord(*r) for r in await conn.execute(q)]

    async def update_training(self, training_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(_TRAININGS).where(_TRAININGS.c.id == training_id)
                               .values(updated_at=time.time(), **values))

    # -- deployments ----------------------------------------------------------------------------
    async def add_deployment(self, *, account: str, deployment_id: str, model_id: str, file_id: str | None,
                             ownerid: str, placement: dict[str, Any], inference_data: int, status: str = "pending",
                             reason: str | None = None) -> DeploymentRecord:
        """Insert; the record carries the store's `pk`. `DuplicateError` when the account
        already has a deployment with this id."""
        now = time.time()
        q = insert(_DEPLOYMENTS).values(
            account=account, deployment_id=deployment_id, model_id=model_id, file_id=file_id, ownerid=ownerid,
            placement=placement, inference_data=inference_data, status=status, reason=reason, created_at=now,
            updated_at=now).returning(*_DEPLOYMENTS.c)
        try:
            async with self._engine.begin() as conn:
                return DeploymentRecord(*(await conn.execute(q)).one())
        except IntegrityError as exc:
            raise DuplicateError(deployment_id) from exc

    async def get_deployment(self, account: str, deployment_id: str) -> DeploymentRecord | None:
        q = select(*_DEPLOYMENTS.c).where(_DEPLOYMENTS.c.account == account,
                                          _DEPLOYMENTS.c.deployment_id == deployment_id)
        async with self._engine.connect() as conn:
            return _one(DeploymentRecord, (await conn.execute(q)).first())

    async def list_deployments(self, account: str, skip: int = 0, limit: int = 100) -> list[DeploymentRecord]:
        q = (select(*_DEPLOYMENTS.c).where(_DEPLOYMENTS.c.account == account)
             .order_by(_DEPLOYMENTS.c.created_at, _DEPLOYMENTS.c.pk).offset(skip).limit(limit))
        async with self._engine.connect() as conn:
            return [DeploymentRecord(*r) for r in await conn.execute(q)]

    async def active_deployments(self, account: str | None = None, model_id: str | None = None
                                 ) -> list[DeploymentRecord]:
        q = select(*_DEPLOYMENTS.c).where(_DEPLOYMENTS.c.status.in_(ACTIVE_DEPLOYMENT))
        if account is not None:
            q = q.where(_DEPLOYMENTS.c.account == account)
        if model_id is not None:
            q = q.where(_DEPLOYMENTS.c.model_id == model_id)
        async with self._engine.connect() as conn:
            return [DeploymentRecord(*r) for r in await conn.execute(q)]

    async def set_deployment_status(self, pk: int, status: str, reason: str | None = None,
                                    only_from: Sequence[str] | None = None) -> bool:
        """Set the status (and reason); with `only_from`, only from those statuses (False if not)."""
        q = update(_DEPLOYMENTS).where(_DEPLOYMENTS.c.pk == pk)
        if only_from is not None:
            q = q.where(_DEPLOYMENTS.c.status.in_(tuple(only_from)))
        async with self._engine.begin() as conn:
            result = await conn.execute(q.values(status=status, reason=reason, updated_at=time.time()))
            return rowcount(result) > 0

    # -- operations -----------------------------------------------------------------------------
    async def add_operations(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert (one executemany) of operation values: the predict path's batches. The
        statement is compiled once per dialect and its rows go to the driver as tuples: Core's
        per-row parameter processing ran on the event loop (~3 ms per 1,000 rows, a stall every
        batch that predicts queued behind); these columns need no bind processing."""
        if not rows:
            return
        async with self._engine.begin() as conn:
            sql, keys = _operations_insert(conn.dialect)
            await conn.exec_driver_sql(sql, list(map(keys, rows)))

    async def add_operation(self, *, account: str, ownerid: str, deployment_id: str, model_id: str, data: str,
                            result: str) -> OperationRecord:
        q = insert(_OPERATIONS).values(account=account, ownerid=ownerid, deployment_id=deployment_id,
                                       model_id=model_id, data=data, result=result,
                                       created_at=time.time()).returning(*_OPERATIONS.c)
        async with self._engine.begin() as conn:
            return OperationRecord(*(await conn.execute(q)).one())

    async def list_operations(self, account: str, *, ownerid: str | None = None, deployment_id: str | None = None,
                              skip: int = 0, limit: int = 1000) -> list[OperationRecord]:
        q = select(*_OPERATIONS.c).where(_OPERATIONS.c.account == account)
        if ownerid is not None:
            q = q.where(_OPERATIONS.c.ownerid == ownerid)
        if deployment_id is not None:
            q = q.where(_OPERATIONS.c.deployment_id == deployment_id)
        q = q.order_by(_OPERATIONS.c.id).offset(skip).limit(limit)
        async with self._engine.connect() as conn:
            return [OperationRecord(*r) for r in await conn.execute(q)]
