"""Seed 001's ML API under `/ml-api/`: models the agent can use, uploaded files, and
fine-tuning jobs. Thin: each route authenticates, calls one service, shapes. Files and
fine-tuning jobs take `X-API-Key` or a Hugging Face token (`Authorization: Bearer`): an
hf-backend job runs in the token's namespace and needs it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from ..finetune.models import (
    BaseModelOut,
    CancelResult,
    CreateFineTuningJob,
    FileOut,
    FineTuningJobOut,
)
from ..registry.checks import check_content
from ..registry.schemas import MLModel, MLModelCreate
from ..tasks.catalogue import ModelDetail
from .deps import AnyCaller, ApiKeyCaller, Svc
from .openapi import ML_API_ERRORS
from .tasks import API_VERSION

router = APIRouter(prefix="/ml-api", tags=["ml-api"], responses=ML_API_ERRORS)


def _both(path: str) -> list[str]:
    """Seed paths end in '/'; answer the same route without it too (no redirect)."""
    return [path, path.rstrip("/")] if path.endswith("/") and path != "/" else [path]


def route(method: str, path: str, **kw: Any):
    def deco(fn):
        for i, p in enumerate(_both(path)):
            router.add_api_route(p, fn, methods=[method], include_in_schema=i == 0, **kw)
        return fn
    return deco


@route("GET", "/")
async def ml_root(caller: ApiKeyCaller, svc: Svc) -> dict[str, Any]:
    return {"status": "online", "version": API_VERSION, "message": "ML Infrastructure API is running",
            "ml_client_available": bool(svc.settings.inference_api_key)}


@route("GET", "/models/", response_model=list[ModelDetail])
async def list_models(caller: ApiKeyCaller, svc: Svc) -> list[ModelDetail]:
    return svc.models.list()


@route("GET", "/models/{model_id:path}", response_model=ModelDetail)
async def get_model(model_id: str, caller: ApiKeyCaller, svc: Svc) -> ModelDetail:
    return svc.models.get(model_id.rstrip("/"))


@route("GET", "/base-models/", response_model=list[BaseModelOut])
async def base_models(caller: AnyCaller, svc: Svc) -> list[BaseModelOut]:
    return svc.finetune.base_models()


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@route("POST", "/files/", response_model=FileOut, status_code=201)
async def upload_file(
    caller: AnyCaller, svc: Svc, file: Annotated[UploadFile, File()],
    purpose: Annotated[str, Form(max_length=50, pattern=r"^[^\x00]*$")] = "fine-tune",
) -> FileOut:
    """The body is stopped at the file cap while it is read (api/limits.py); the file is
    copied to disk in chunks, never held in memory whole."""
    try:
        return await svc.finetune.upload(caller, file.filename or "upload", _chunks(file), purpose)
    finally:
        await file.close()


@route("GET", "/files/", response_model=list[FileOut])
async def list_files(caller: AnyCaller, svc: Svc) -> list[FileOut]:
    return await svc.finetune.files(caller)


@route("GET", "/files/{file_id}/", response_model=FileOut)
async def get_file(file_id: str, caller: AnyCaller, svc: Svc) -> FileOut:
    return await svc.finetune.file(caller, file_id)


@route("GET", "/fine-tuning-jobs/", response_model=list[FineTuningJobOut])
async def list_jobs(caller: AnyCaller, svc: Svc) -> list[FineTuningJobOut]:
    return await svc.finetune.list(caller)


@route("POST", "/fine-tuning-jobs/", response_model=FineTuningJobOut)
async def create_job(caller: AnyCaller, svc: Svc, body: CreateFineTuningJob = Body()) -> FineTuningJobOut:
    return await svc.finetune.create(caller, body)


@route("GET", "/fine-tuning-jobs/{job_id}/", response_model=FineTuningJobOut)
async def get_job(job_id: str, caller: AnyCaller, svc: Svc) -> FineTuningJobOut:
    return await svc.finetune.get(caller, job_id)


@route("POST", "/fine-tuning-jobs/{job_id}/cancel/", response_model=CancelResult)
async def cancel_job(job_id: str, caller: AnyCaller, svc: Svc) -> CancelResult:
    return await svc.finetune.cancel(caller, job_id)


# -- a fine-tuned model is not a dead end: download it, register it, follow the job ------------
class RegisterFineTuned(BaseModel):
    """Registers a succeeded job's model in the MLConnector registry (`/model/...`)."""

    model_config = ConfigDict(extra="forbid")
    modelname: str | None = Field(None, min_length=1, max_length=300)
    modeltags: list[str] = Field(default_factory=list, max_length=32)


def _archive_name(job) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", job.fine_tuned_model or job.id)[:200] + ".tar.gz"


@route("GET", "/fine-tuning-jobs/{job_id}/model/", response_class=FileResponse)
async def download_model(job_id: str, caller: AnyCaller, svc: Svc) -> FileResponse:
    """The fine-tuned model: a `.tar.gz` of its save_pretrained directory (safetensors, config, tokenizer)."""
    job, path = await svc.finetune.model_archive(caller, job_id)
    return FileResponse(path, media_type="application/gzip", filename=_archive_name(job))


@route("POST", "/fine-tuning-jobs/{job_id}/register/", response_model=MLModel, status_code=201)
async def register_model(job_id: str, caller: AnyCaller, svc: Svc,
                         body: RegisterFineTuned = Body(default_factory=RegisterFineTuned)) -> MLModel:
    """A new MLConnector model (kind `text-generation`) whose model file is the job's archive:
    deploy it with POST /deployment/add and generate with /deployment/{id}/predict."""
    job, path = await svc.finetune.model_archive(caller, job_id)
    name = _archive_name(job)
    await asyncio.to_thread(check_content, path, name, "model")
    tags = list(dict.fromkeys(["fine-tuned", *body.modeltags]))
    created = await svc.registry.create(caller.account, MLModelCreate(
        modelname=body.modelname or job.fine_tuned_model or job.id, modelkind="text-generation", modeltags=tags,
        hyperparameter=[{"parameter": k, "value": v} for k, v in (job.compute_config or {}).items()],
        modelperformance=[{"metric": k, "value": v} for k, v in (job.metrics or {}).items()]))
    await svc.registry.add_trained_file(created.id, path, name)
    return await svc.registry.get(caller.account, created.id)


@route("GET", "/fine-tuning-jobs/{job_id}/logs/", response_class=PlainTextResponse)
async def job_logs(job_id: str, caller: AnyCaller, svc: Svc,
                   tail: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> PlainTextResponse:
    """The trainer's log (local jobs), or the HF job's log lines (with the owner's HF token)."""
    return PlainTextResponse(await svc.finetune.logs(caller, job_id, tail))


@route("GET", "/fine-tuning-jobs/{job_id}/events/")
async def job_events(job_id: str, caller: AnyCaller, svc: Svc) -> dict[str, Any]:
    events = await svc.finetune.events(caller, job_id)
    return {"object": "list", "data": [e.model_dump() for e in events], "has_more": False}
