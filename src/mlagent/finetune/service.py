"""`FineTuningService`: uploaded files and fine-tuning jobs, owned per account.

A job is recorded `created`, handed to the backend (`queued`), and the backend moves it
to `running` and then `succeeded` / `failed` / `cancelled`, with metrics as they come.
Another account's file or job answers 404 (or, as a body field, 400 naming the field).
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from pathlib import Path

from ..auth.identity import Identity
from ..config import Settings
from ..errors import ServiceError, not_found
from ..store.finetune import FineTuneStore, FineTuningJob, UploadedFile
from ..tasks.catalogue import iso
from .local import LocalBackend
from .models import TERMINAL, BaseModelOut, CancelResult, CreateFineTuningJob, FileOut, FineTuningJobOut
from .base_models import BASE_CONFIGS

log = logging.getLogger("mlagent.finetune")
MAX_FILE_BYTES = 50 * 1024 * 1024
LOCAL_INSTANCE_TYPES = ("cpu", "local")


def _bad(message: str, param: str) -> ServiceError:
    return ServiceError(400, "invalid_request_error", message, param, retryable=False)


def job_out(job: FineTuningJob) -> FineTuningJobOut:
    return FineTuningJobOut(
        id=job.id, model_id=job.model_id, status=job.status, created_at=iso(job.created_at),
        updated_at=iso(job.updated_at), fine_tuned_model=job.fine_tuned_model, training_file=job.training_file,
        validation_file=job.validation_file, metrics=job.metrics, error=job.error, suffix=job.suffix,
        compute_config=job.compute_config or {},
    )


def file_out(row: UploadedFile) -> FileOut:
    return FileOut(id=row.id, filename=row.filename, purpose=row.purpose, bytes=row.bytes, sha256=row.sha256,
                   created_at=iso(row.created_at))


class FineTuningService:
    def __init__(self, settings: Settings, store: FineTuneStore, backend: LocalBackend) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.files_dir = settings.data_dir / "files"

    # -- files --------------------------------------------------------------------
    async def upload(self, identity: Identity, filename: str, content: bytes, purpose: str) -> FileOut:
        if not content:
            raise _bad("The uploaded file is empty.", "file")
        if len(content) > MAX_FILE_BYTES:
            raise _bad(f"The uploaded file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB.", "file")
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        path = self.files_dir / file_id
        path.write_bytes(content)
        row = UploadedFile(id=file_id, account=identity.account, filename=Path(filename or "upload").name[:300],
                           purpose=purpose, bytes=len(content), sha256=hashlib.sha256(content).hexdigest(),
                           path=str(path.resolve()), created_at=time.time())
        await self.store.add_file(row)
        return file_out(row)

    async def files(self, identity: Identity) -> list[FileOut]:
        return [file_out(f) for f in await self.store.files(identity.account)]

    async def _owned_file(self, identity: Identity, file_id: str, param: str) -> UploadedFile:
        row = await self.store.file(file_id)
        if row is None or row.account != identity.account:
            raise _bad(f"No uploaded file with id {file_id!r}; upload it with POST /ml-api/files/.", param)
        return row

    async def file(self, identity: Identity, file_id: str) -> FileOut:
        row = await self.store.file(file_id)
        if row is None or row.account != identity.account:
            raise not_found("file", file_id, "file_id")
        return file_out(row)

    # -- jobs ---------------------------------------------------------------------
    def base_models(self) -> list[BaseModelOut]:
        return [BaseModelOut(id=name, kind="base", config=cfg) for name, cfg in BASE_CONFIGS.items()]

    async def create(self, identity: Identity, req: CreateFineTuningJob) -> FineTuningJobOut:
        base_job = None
        if req.model_id not in BASE_CONFIGS:
            base_job = await self.store.by_model(identity.account, req.model_id)
            if base_job is None or base_job.status != "succeeded":
                raise _bad(f"Model {req.model_id!r} cannot be fine-tuned here: use one of "
                           f"{', '.join(BASE_CONFIGS)} or a model your earlier jobs produced.", "model_id")
        if req.compute_config.instance_type not in LOCAL_INSTANCE_TYPES:
            raise _bad(f"Instance type {req.compute_config.instance_type!r} is not available: fine-tuning jobs run "
                       f"on this server's local backend; use one of {', '.join(LOCAL_INSTANCE_TYPES)}.",
                       "compute_config.instance_type")
        train = await self._owned_file(identity, req.training_file, "training_file")
        valid = await self._owned_file(identity, req.validation_file, "validation_file") \
            if req.validation_file else None
        now = time.time()
        job = FineTuningJob(
            id=f"ft-{uuid.uuid4().hex[:24]}", account=identity.account, model_id=req.model_id, status="created",
            training_file=train.id, validation_file=valid.id if valid else None, suffix=req.suffix,
            compute_config=req.compute_config.model_dump(), backend="local", fine_tuned_model=None,
            output_dir=None, metrics=None, error=None, created_at=now, updated_at=now,
        )
        await self.store.add_job(job)
        created = job_out(job)
        await self.backend.submit(job.id, train.path, valid.path if valid else None,
                                  base_job.output_dir if base_job else None)
        return created

    async def _owned_job(self, identity: Identity, job_id: str) -> FineTuningJob:
        job = await self.store.job(job_id)
        if job is None or job.account != identity.account:
            raise not_found("fine-tuning job", job_id, "job_id")
        return job

    async def get(self, identity: Identity, job_id: str) -> FineTuningJobOut:
        return job_out(await self._owned_job(identity, job_id))

    async def list(self, identity: Identity) -> list[FineTuningJobOut]:
        return [job_out(j) for j in await self.store.jobs(identity.account)]

    async def cancel(self, identity: Identity, job_id: str) -> CancelResult:
        job = await self._owned_job(identity, job_id)
        if job.status in TERMINAL:
            raise _bad(f"Job {job_id} has already {job.status}; only unfinished jobs can be cancelled.", "job_id")
        await self.backend.cancel(job_id)
        return CancelResult(message=f"Job {job_id} cancelled")
