"""`/model/*`: the MLConnector model registry surface (seed 003)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from ..errors import ServiceError
from ..registry.schemas import FileKind, FileSchema, MLModel, MLModelCreate, MLModelUpdate
from .deps import AnyCaller, FastSvc as Svc
from .limits import MAX_INT32
from .openapi import MLCONNECTOR_ERRORS

router = APIRouter(tags=["models"], responses=MLCONNECTOR_ERRORS)
Skip = Annotated[int, Query(ge=0, le=MAX_INT32, description="Number of items to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Maximum number of items")]


@router.post("/model/add", status_code=201, response_model=MLModel)
async def add_model(body: MLModelCreate, caller: AnyCaller, svc: Svc) -> MLModel:
    return await svc.registry.create(caller.account, body)


@router.get("/model/all", response_model=list[MLModel])
async def all_models(caller: AnyCaller, svc: Svc, skip: Skip = 0, limit: Limit = 100) -> list[MLModel]:
    return await svc.registry.list(caller.account, skip, limit)


@router.get("/model/getkind/{modelkind}", response_model=list[MLModel])
async def models_by_kind(modelkind: str, caller: AnyCaller, svc: Svc, skip: Skip = 0,
                         limit: Limit = 100) -> list[MLModel]:
    return await svc.registry.list(caller.account, skip, limit, kind=modelkind)


@router.get("/model/search", response_model=list[MLModel])
async def search_models(caller: AnyCaller, svc: Svc, tags: Annotated[list[str], Query()] = [],  # noqa: B006
                        match: Literal["all", "any"] = "all") -> list[MLModel]:
    return await svc.registry.search(caller.account, tags, match)


@router.get("/model/{model_id}", response_model=MLModel)
async def get_model(model_id: str, caller: AnyCaller, svc: Svc) -> MLModel:
    return await svc.registry.get(caller.account, model_id)


@router.patch("/model/{model_id}", response_model=MLModel)
async def update_model(model_id: str, body: MLModelUpdate, caller: AnyCaller, svc: Svc) -> MLModel:
    return await svc.registry.update(caller.account, model_id, body)


@router.delete("/model/{model_id}")
async def delete_model(model_id: str, caller: AnyCaller, svc: Svc) -> dict:
    await svc.registry.delete(caller.account, model_id)
    return {"id": model_id, "deleted": True}


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@router.post("/model/{model_id}/upload", status_code=201, response_model=FileSchema)
async def upload_file(model_id: str, request: Request, caller: AnyCaller, svc: Svc,
                      file: Annotated[UploadFile, File()], file_kind: Annotated[FileKind, Form()]) -> FileSchema:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > svc.registry.max_upload_bytes + 64 * 1024:
        raise ServiceError(413, "file_too_large",
                           f"The file exceeds the upload limit of {svc.registry.max_upload_bytes} bytes.", "file",
                           retryable=False)
    try:
        return await svc.registry.upload(caller.account, model_id, file.filename or "", file_kind, _chunks(file))
    finally:
        await file.close()
