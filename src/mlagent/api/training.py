"""`/mltraining/*`: start a training job for a registered model and follow it (seed 003)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from ..registry.schemas import MLTrain, MLTrainCreate
from .deps import AnyCaller, FastSvc as Svc
from .limits import MAX_INT32
from .openapi import MLCONNECTOR_ERRORS

router = APIRouter(tags=["training"], responses=MLCONNECTOR_ERRORS)


@router.post("/mltraining/add", status_code=201, response_model=MLTrain)
async def add_training(body: MLTrainCreate, caller: AnyCaller, svc: Svc) -> MLTrain:
    return await svc.trainings.add(caller.account, body)


@router.get("/mltraining/all", response_model=list[MLTrain])
async def all_trainings(caller: AnyCaller, svc: Svc, skip: Annotated[int, Query(ge=0, le=MAX_INT32)] = 0,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[MLTrain]:
    return await svc.trainings.list(caller.account, skip, limit)


@router.get("/mltraining/{training_id}", response_model=MLTrain)
async def get_training(training_id: str, caller: AnyCaller, svc: Svc) -> MLTrain:
    return await svc.trainings.get(caller.account, training_id)


@router.get("/mltraining/{training_id}/logs", response_class=PlainTextResponse)
async def training_logs(training_id: str, caller: AnyCaller, svc: Svc) -> str:
    return await svc.trainings.logs(caller.account, training_id)


@router.delete("/mltraining/{training_id}", response_model=MLTrain)
async def cancel_training(training_id: str, caller: AnyCaller, svc: Svc) -> MLTrain:
    return await svc.trainings.cancel(caller.account, training_id)
