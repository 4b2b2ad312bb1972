"""Model metadata and artifacts, scoped to the calling account (another's model is a 404)."""

from __future__ import annotations

import asyncio
import builtins
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from ..errors import ServiceError, not_found
from ..store.protocols import ModelRegistry
from ..store.records import ModelFileRecord, ModelRecord
from .artifacts import ArtifactStore
from .checks import check_content, check_name
from .schemas import FileKind, FileSchema, MLModel, MLModelCreate, MLModelUpdate

SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def file_schema(row: ModelFileRecord) -> FileSchema:
    return FileSchema(id=row.id, modelid=row.model_id, filename=row.filename, file_kind=row.kind, size=row.size,
                      sha256=row.sha256, version=row.version, source=row.source, created_at=row.created_at)


class RegistryService:
    def __init__(self, store: ModelRegistry, artifacts: ArtifactStore, max_upload_bytes: int) -> None:
        self.store = store
        self.artifacts = artifacts
        self.max_upload_bytes = max_upload_bytes
        # Set by the serving layer: "is this model deployed right now?" (used to refuse deletes).
        self.in_use: Callable[[str, str], Awaitable[list[str]]] | None = None

    async def _view(self, row: ModelRecord) -> MLModel:
        files = [file_schema(f) for f in await self.store.list_files(row.id)]
        return MLModel(id=row.id, modelid=row.id, modelname=row.modelname, modelkind=row.modelkind, files=files,
                       created_at=row.created_at, updated_at=row.updated_at, **row.spec)

    async def create(self, account: str, body: MLModelCreate) -> MLModel:
        now = time.time()
        spec = body.model_dump(mode="json", exclude={"modelname", "modelkind"})
        row = ModelRecord(id=uuid.uuid4().hex, account=account, modelname=body.modelname, modelkind=body.modelkind,
                          spec=spec, tags=list(body.modeltags), created_at=now, updated_at=now)
        return await self._view(await self.store.add_model(row))

    async def _row(self, account: str, model_id: str) -> ModelRecord:
        row = await self.store.get_model(account, model_id)
        if row is None:
            raise not_found("model", model_id, "model_id")
        return row

    async def get(self, account: str, model_id: str) -> MLModel:
        return await self._view(await self._row(account, model_id))

    async def list(self, account: str, skip: int, limit: int, kind: str | None = None) -> list[MLModel]:
        return [await self._view(r) for r in await self.store.list_models(account, skip, limit, kind)]

    async def search(self, account: str, tags: builtins.list[str], match: str = "all") -> builtins.list[MLModel]:
        """Models carrying every tag in `tags` (match="all", the default) or any of them ("any")."""
        wanted = {t.lower() for t in tags}
        out = []
        for row in await self.store.list_models(account, 0, 1_000_000):
            have = {str(t).lower() for t in row.tags}
            if not wanted or (wanted <= have if match == "all" else wanted & have):
                out.append(await self._view(row))
        return out

    async def update(self, account: str, model_id: str, body: MLModelUpdate) -> MLModel:
        row = await self._row(account, model_id)
        changes = body.model_dump(mode="json", exclude_unset=True)
        for key in ("modelname", "modelkind"):
            if changes.get(key, "") is None:
                raise ServiceError(422, "invalid_request_error", f"'{key}' cannot be null.", key, retryable=False)
        values: dict = {k: changes.pop(k) for k in ("modelname", "modelkind") if k in changes}
        spec = dict(row.spec)
        for key, value in changes.items():
            spec[key] = value if value is not None else []
        values["spec"] = spec
        values["tags"] = list(spec.get("modeltags", []))
        updated = await self.store.update_model(account, model_id, **values)
        if updated is None:
            raise not_found("model", model_id, "model_id")
        return await self._view(updated)

    async def delete(self, account: str, model_id: str) -> None:
        await self._row(account, model_id)
        if self.in_use is not None:
            deployments = await self.in_use(account, model_id)
            if deployments:
                raise ServiceError(409, "model_in_use",
                                   f"Model {model_id!r} is used by active deployment(s) {', '.join(deployments)}; "
                                   "delete those deployments first.", "model_id", retryable=False)
        for sha in set(await self.store.delete_model(account, model_id)):
            if not await self.store.sha_in_use(sha):
                await asyncio.to_thread(self.artifacts.remove, sha)

    async def upload(self, account: str, model_id: str, filename: str, kind: FileKind,
                     chunks: AsyncIterator[bytes]) -> FileSchema:
        await self._row(account, model_id)
        filename = SAFE_NAME.sub("_", Path(filename or f"{kind}.bin").name)[:200] or f"{kind}.bin"
        check_name(filename, kind)
        ingested = await self.artifacts.ingest(chunks, self.max_upload_bytes)
        try:
            if ingested.size == 0:
                raise ServiceError(422, "invalid_file", "The file is empty.", "file", retryable=False)
            await asyncio.to_thread(check_content, ingested.path, filename, kind)
        except BaseException:
            ingested.path.unlink(missing_ok=True)
            raise
        await self.artifacts.commit(ingested)
        return file_schema(await self.store.add_file(id=uuid.uuid4().hex, model_id=model_id, kind=kind,
                                                     filename=filename, size=ingested.size, sha256=ingested.sha256,
                                                     source="upload"))

    async def add_trained_file(self, model_id: str, path: Path, filename: str) -> FileSchema:
        """Register a model file a training job produced, as the model's next version."""
        ingested = await asyncio.to_thread(self.artifacts.add_file, path)
        return file_schema(await self.store.add_file(id=uuid.uuid4().hex, model_id=model_id, kind="model",
                                                     filename=filename, size=ingested.size, sha256=ingested.sha256,
                                                     source="training"))

    async def latest(self, account: str, model_id: str, kind: FileKind) -> tuple[FileSchema, Path] | None:
        await self._row(account, model_id)
        row = await self.store.latest_file(model_id, kind)
        if row is None:
            return None
        return file_schema(row), await self.artifacts.fetch(row.sha256)

    async def file(self, account: str, model_id: str, file_id: str) -> tuple[FileSchema, Path]:
        await self._row(account, model_id)
        row = await self.store.get_file(file_id)
        if row is None or row.model_id != model_id:
            raise not_found("file", file_id, "file_id")
        return file_schema(row), await self.artifacts.fetch(row.sha256)
