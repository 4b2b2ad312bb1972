"""`FineTuningService`: uploaded files and fine-tuning jobs, owned per account.

A job is recorded `created`, handed to the backend (`queued`), and the backend moves it
to `running` and then `succeeded` / `failed` / `cancelled`, with metrics as they come.
Another account's file or job answers 404 (or, as a body field, 400 naming the field).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from ..auth.identity import Identity, describe
from ..config import Settings
from ..errors import ServiceError, not_found
from ..store.protocols import FineTunes
from ..store.records import FineTuningJobRecord, UploadedFileRecord
from ..tasks.catalogue import iso
from .base_models import BASE_CONFIGS
from .hf import HfBackend
from .local import LocalBackend
from .models import (
    TERMINAL,
    BaseModelOut,
    CancelResult,
    CreateFineTuningJob,
    FileOut,
    FineTuningEvent,
    FineTuningJobOut,
    HubJobOut,
)
from .outputs import EVENTS_FILE, MAX_LOG_BYTES, log_tail, model_archive, parse_events
from .stored import FineTuneBlobs, file_key
from .trl_job import HF_DEFAULTS, dataset_repo, model_repo

log = logging.getLogger("mlagent.finetune")
LOCAL_INSTANCE_TYPES = ("cpu", "local")


def _bad(message: str, param: str) -> ServiceError:
    return ServiceError(400, "invalid_request_error", message, param, retryable=False)


def job_out(job: FineTuningJobRecord) -> FineTuningJobOut:
    return FineTuningJobOut(
        id=job.id, model_id=job.model_id, status=job.status, created_at=iso(job.created_at),
        updated_at=iso(job.updated_at), fine_tuned_model=job.fine_tuned_model, training_file=job.training_file,
        validation_file=job.validation_file, metrics=job.metrics, error=job.error, suffix=job.suffix,
        compute_config=job.compute_config or {}, backend=job.backend,
        hub=HubJobOut.model_validate(job.hub) if job.hub else None,
        estimated_cost_usd=job.estimated_cost_usd, cost_usd=job.cost_usd,
    )


def file_out(row: UploadedFileRecord) -> FileOut:
    return FileOut(id=row.id, filename=row.filename, purpose=row.purpose, bytes=row.bytes, sha256=row.sha256,
                   created_at=iso(row.created_at))


def _jsonl_rows(path: str, param: str) -> None:
    """TRL reads the file as a dataset: JSON Lines objects with `text`, `messages`, or
    `prompt` + `completion` (400 naming the field otherwise)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            usable = isinstance(row, dict) and bool({"text", "messages"} & row.keys()
                                                    or {"prompt", "completion"} <= row.keys())
            if not usable:
                raise _bad(f"Line {n} of the file is not a JSON object with 'text', 'messages', or 'prompt' and "
                           "'completion': an hf-backend job trains with TRL on JSON Lines rows.", param)
            if n >= 10_000:
                return


class FineTuningService:
    def __init__(self, settings: Settings, store: FineTunes, backend: LocalBackend, stored: FineTuneBlobs,
                 hf: HfBackend | None = None) -> None:
        self.settings = settings
        self.store = store
        self.backend = backend
        self.stored = stored  # uploads and local jobs' outputs in the blob store (finetune/stored.py)
        self.hf = hf

    # -- files --------------------------------------------------------------------
    async def upload(self, identity: Identity, filename: str, chunks: AsyncIterator[bytes], purpose: str) -> FileOut:
        """Stream the file to disk, hashing as it goes; past the cap it stops reading (413)."""
        limit = self.settings.max_training_file_bytes
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        key = file_key(file_id)
        path = self.stored.local(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        try:
            out = await asyncio.to_thread(path.open, "wb")
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise ServiceError(413, "file_too_large", f"The uploaded file is larger than "
                                           f"{limit // (1024 * 1024)} MiB ({limit} bytes).", "file", retryable=False)
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            finally:
                await asyncio.to_thread(out.close)
            if size == 0:
                raise _bad("The uploaded file is empty.", "file")
            name = Path((filename or "upload").replace("\x00", "")).name[:300] or "upload"
            row = UploadedFileRecord(id=file_id, account=identity.account, filename=name, purpose=purpose,
                                     bytes=size, sha256=digest.hexdigest(), path=key, created_at=time.time())
            await asyncio.to_thread(self.stored.put_upload, key, path)
            await self.store.add_file(row)
        except BaseException:
            path.unlink(missing_ok=True)  # no orphan file behind a refused or failed upload
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.stored.blobs.delete, key)
            raise
        return file_out(row)

    async def files(self, identity: Identity) -> list[FileOut]:
        return [file_out(f) for f in await self.store.files(identity.account)]

    async def _owned_file(self, identity: Identity, file_id: str, param: str) -> UploadedFileRecord:
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
        if req.compute_config.instance_type not in LOCAL_INSTANCE_TYPES:
            return await self._create_hf(identity, req)
        base_job = None
        if req.model_id not in BASE_CONFIGS:
            base_job = await self.store.by_model(identity.account, req.model_id)
            if base_job is None or base_job.status != "succeeded" or base_job.backend != "local":
                raise _bad(f"Model {req.model_id!r} cannot be fine-tuned here: use one of "
                           f"{', '.join(BASE_CONFIGS)} or a model your earlier jobs produced.", "model_id")
        train = await self._owned_file(identity, req.training_file, "training_file")
        valid = await self._owned_file(identity, req.validation_file, "validation_file") \
            if req.validation_file else None
        train_path, valid_path = await self._paths(train, valid)
        base_dir = None
        if base_job is not None:
            base_dir = await asyncio.to_thread(self.stored.model_dir, base_job.output_dir) \
                if base_job.output_dir else None
            if base_dir is None:
                raise ServiceError(409, "model_missing", f"The model of {req.model_id!r} is not in the blob store.",
                                   "model_id", retryable=False)
        job = self._record(identity, req, train, valid, "local", req.compute_config.model_dump())
        # Held from its first moment: no other replica's sweep takes a just-created job for lost.
        job = dataclasses.replace(job, lease_owner=self.backend.owner,
                                  lease_expires_at=time.time() + self.backend.lease_seconds)
        await self.store.add_job(job)
        created = job_out(job)
        await self.backend.submit(job.id, train_path, valid_path, str(base_dir) if base_dir else None)
        return created

    async def _paths(self, train: UploadedFileRecord, valid: UploadedFileRecord | None) -> tuple[str, str | None]:
        """The training (and validation) file on this disk: fetched if uploaded through another replica."""
        found = [await asyncio.to_thread(self.stored.upload_path, row.path, row.sha256, param)
                 for row, param in ((train, "training_file"), (valid, "validation_file")) if row is not None]
        return str(found[0]), str(found[1]) if valid is not None else None

    async def _create_hf(self, identity: Identity, req: CreateFineTuningJob) -> FineTuningJobOut:
        """An HF Jobs flavor: a TRL SFT job in the caller's namespace, with the caller's token."""
        flavor = req.compute_config.instance_type
        hf = self.hf
        flavors = await hf.refresh_flavors(identity.token) if hf is not None else []
        if hf is None or flavor not in flavors:
            raise _bad(f"Instance type {flavor!r} is not available: use {' or '.join(LOCAL_INSTANCE_TYPES)} (this "
                       f"server's CPU) or an HF Jobs flavor: {', '.join(flavors)}.", "compute_config.instance_type")
        if identity.token is None:
            raise ServiceError(403, "permission_error", f"Instance type {flavor!r} runs the job on Hugging Face Jobs "
                               "in your Hugging Face namespace, billed to you, and needs your Hugging Face token: send "
                               "'Authorization: Bearer <HF token>' (without X-API-Key) instead of an API key.",
                               "compute_config.instance_type", retryable=False)
        lacking = identity.missing("job.write", "repo.write")
        if lacking:  # the job needs both: it runs as a Job, and pushes a dataset and a model repo
            raise ServiceError(403, "permission_error", f"Your Hugging Face token lacks "
                               f"{' and '.join(describe(p) for p in lacking)} for your own namespace, which an "
                               f"HF Jobs fine-tuning job on {flavor!r} needs (it uploads the data to a dataset repo, "
                               "runs as a Job and pushes the model). Grant it in your token settings.",
                               "compute_config.instance_type", retryable=False)
        train = await self._owned_file(identity, req.training_file, "training_file")
        valid = await self._owned_file(identity, req.validation_file, "validation_file") \
            if req.validation_file else None
        train_path, valid_path = await self._paths(train, valid)
        for path, param in ((train_path, "training_file"), (valid_path, "validation_file")):
            if path is not None:
                await asyncio.to_thread(_jsonl_rows, path, param)
        await hf.check_model(identity.token, req.model_id)
        cfg = req.compute_config.model_dump()
        cfg.update({k: v for k, v in HF_DEFAULTS.items() if k not in req.compute_config.model_fields_set})
        job = self._record(identity, req, train, valid, "hf", cfg)
        ns = identity.account  # an hf identity's account is its Hub user name
        job = dataclasses.replace(
            job, hub={"namespace": ns, "flavor": flavor, "dataset_repo": dataset_repo(ns, job.id),
                      "model_repo": model_repo(ns, req.model_id, req.suffix, job.id)},
            estimated_cost_usd=hf.estimate(flavor, float(cfg["timeout_seconds"])))
        await self.store.add_job(job)
        created = job_out(job)
        hf.submit(job, identity.token, train_path, valid_path)
        return created

    @staticmethod
    def _record(identity: Identity, req: CreateFineTuningJob, train: UploadedFileRecord,
                valid: UploadedFileRecord | None, backend: str, cfg: dict) -> FineTuningJobRecord:
        now = time.time()
        return FineTuningJobRecord(
            id=f"ft-{uuid.uuid4().hex[:24]}", account=identity.account, model_id=req.model_id, status="created",
            training_file=train.id, validation_file=valid.id if valid else None, suffix=req.suffix,
            compute_config=cfg, backend=backend, fine_tuned_model=None, output_dir=None, metrics=None, error=None,
            created_at=now, updated_at=now,
        )

    async def _owned_job(self, identity: Identity, job_id: str) -> FineTuningJobRecord:
        job = await self.store.job(job_id)
        if job is None or job.account != identity.account:
            raise not_found("fine-tuning job", job_id, "job_id")
        return job

    def _follow(self, identity: Identity, job: FineTuningJobRecord) -> None:
        """An owner reading an unfinished hf job with a token resumes its polling (after a restart)."""
        if self.hf is not None and identity.token is not None and job.backend == "hf" and job.status not in TERMINAL:
            self.hf.attach(job, identity.token)

    async def get(self, identity: Identity, job_id: str) -> FineTuningJobOut:
        job = await self._owned_job(identity, job_id)
        self._follow(identity, job)
        return job_out(job)

    async def list(self, identity: Identity) -> list[FineTuningJobOut]:
        jobs = await self.store.jobs(identity.account)
        for job in jobs:
            self._follow(identity, job)
        return [job_out(j) for j in jobs]

    # -- what a job leaves: model, logs, events (finetune/outputs.py) --------------------
    async def model_archive(self, identity: Identity, job_id: str) -> tuple[FineTuningJobRecord, Path]:
        """The fine-tuned model of the caller's succeeded local job, as a `.tar.gz`."""
        job = await self._owned_job(identity, job_id)
        if job.backend == "hf":
            url = (job.hub or {}).get("model_repo")
            raise ServiceError(409, "model_on_hub", f"Job {job_id} trained on Hugging Face Jobs: its model is the "
                               f"Hub repo {url!r} in your namespace; download it from the Hub.", "job_id",
                               retryable=False)
        out = await asyncio.to_thread(self.stored.model_dir, job.output_dir) \
            if job.status == "succeeded" and job.output_dir else None
        if out is None:
            raise ServiceError(409, "model_not_ready", f"Job {job_id} is {job.status}: only a succeeded job has a "
                               "model.", "job_id", retryable=False)
        return job, await asyncio.to_thread(model_archive, out)

    async def logs(self, identity: Identity, job_id: str, tail: int) -> str:
        job = await self._owned_job(identity, job_id)
        if job.backend == "hf":
            if self.hf is None or not job.hub or not job.hub.get("job_id"):
                return ""
            if identity.token is None:
                raise ServiceError(403, "permission_error", "This job's logs are on Hugging Face Jobs: read them "
                                   "with your Hugging Face token ('Authorization: Bearer').", "job_id",
                                   retryable=False)
            return await self.hf.logs(identity.token, job.hub, tail)
        if not job.output_dir:
            return ""
        return log_tail(await asyncio.to_thread(self.stored.notes, job.output_dir, "trainer.log", MAX_LOG_BYTES), tail)

    async def events(self, identity: Identity, job_id: str) -> builtins.list[FineTuningEvent]:
        """The job's events, oldest first: its creation, what the backend recorded as it ran
        (start, metrics, end), and a cancellation or an hf job's current state."""
        job = await self._owned_job(identity, job_id)
        rows = [{"created_at": job.created_at, "level": "info", "type": "message",
                 "message": f"Created fine-tuning job {job.id} ({job.backend} backend, base {job.model_id})."}]
        if job.output_dir:
            rows += parse_events(await asyncio.to_thread(self.stored.notes, job.output_dir, EVENTS_FILE))
        if job.status == "cancelled" or (job.backend == "hf" and job.status != "created"):
            text = f"The job is {job.status}." + (f" {job.error}" if job.error else "")
            rows.append({"created_at": job.updated_at, "level": "error" if job.status == "failed" else "info",
                         "type": "message", "message": text, "data": {"status": job.status}})
        return [FineTuningEvent(id=f"{job.id}-event-{i}", **row) for i, row in enumerate(rows)]

    async def cancel(self, identity: Identity, job_id: str) -> CancelResult:
        job = await self._owned_job(identity, job_id)
        if job.status in TERMINAL:
            raise _bad(f"Job {job_id} has already {job.status}; only unfinished jobs can be cancelled.", "job_id")
        if job.backend == "hf" and self.hf is not None:
            await self.hf.cancel(job, identity.token)
        else:
            await self.backend.cancel(job_id)
        return CancelResult(message=f"Job {job_id} cancelled")
