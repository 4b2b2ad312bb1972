"""`/deployment/*`: deployments, predict with explanations, the operations log, drift (seed 003)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from ..serving.schemas import (DriftReport, MLDeploymentCreate, MLDeploymentOposCreate, MLDeploymentOposReturn,
                               MLDeploymentReturn, PredictRequest, PredictResponse)
from .deps import AnyCaller
from .deps import FastSvc as Svc

router = APIRouter(tags=["deployments"])
Skip = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _base(request: Request) -> str:
    return str(request.base_url)


@router.get("/deployment/all", response_model=list[MLDeploymentReturn])
async def all_deployments(request: Request, caller: AnyCaller, svc: Svc, skip: Skip = 0,
                          limit: Limit = 100) -> list[MLDeploymentReturn]:
    return await svc.deployments.list(caller.account, skip, limit, _base(request))


@router.post("/deployment/add", status_code=201, response_model=MLDeploymentReturn)
async def add_deployment(body: MLDeploymentCreate, request: Request, caller: AnyCaller,
                         svc: Svc) -> MLDeploymentReturn:
    return await svc.deployments.create(caller.account, body, _base(request))


@router.post("/deployment/add/operation", status_code=201, response_model=MLDeploymentOposReturn)
async def add_operation(body: MLDeploymentOposCreate, caller: AnyCaller, svc: Svc) -> MLDeploymentOposReturn:
    return await svc.monitoring.record(caller.account, body)


@router.get("/deployment/get/status/{deployment_id}", response_model=MLDeploymentReturn)
async def deployment_status(deployment_id: str, request: Request, caller: AnyCaller, svc: Svc) -> MLDeploymentReturn:
    return await svc.deployments.get(caller.account, deployment_id, _base(request))


@router.get("/deployment/get/opos/{ownerid}", response_model=list[MLDeploymentOposReturn])
async def operations_by_owner(ownerid: str, caller: AnyCaller, svc: Svc, skip: Skip = 0,
                              limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[MLDeploymentOposReturn]:
    return await svc.monitoring.by_owner(caller.account, ownerid, skip, limit)


@router.post("/deployment/{deployment_id}/predict", response_model=PredictResponse, response_model_exclude_none=True)
async def predict(deployment_id: str, body: PredictRequest, caller: AnyCaller, svc: Svc) -> PredictResponse:
    return await svc.deployments.predict(caller.account, deployment_id, body)


@router.get("/deployment/{deployment_id}/drift", response_model=DriftReport)
async def drift(deployment_id: str, caller: AnyCaller, svc: Svc,
                method: Annotated[int | None, Query(ge=0, le=2)] = None) -> DriftReport:
    return await svc.monitoring.drift(caller.account, deployment_id, method)


@router.delete("/deployment/{deployment_id}", response_model=MLDeploymentReturn)
async def delete_deployment(deployment_id: str, request: Request, caller: AnyCaller, svc: Svc) -> MLDeploymentReturn:
    return await svc.deployments.delete(caller.account, deployment_id, _base(request))
