"""`/api/v1/usage…` (seed 002): LLM usage totals, per agent and model, and per-thread
token budgets. A caller sees its own usage; the operator key sees and resets everyone's."""

from __future__ import annotations

from fastapi import APIRouter

from ..usage.models import (
    AgentUsageInfo,
    ModelUsageInfo,
    ResetResponse,
    ThreadBudgetInfo,
    ThreadBudgetListResponse,
    UsageResponse,
)
from .deps import AnyCaller, Svc
from .openapi import OPERATOR_ERRORS

router = APIRouter(prefix="/api/v1", tags=["usage"], responses=OPERATOR_ERRORS)


@router.get("/usage", response_model=UsageResponse)
async def get_usage(caller: AnyCaller, svc: Svc) -> UsageResponse:
    return await svc.usage.overview(caller)


@router.get("/usage/threads", response_model=ThreadBudgetListResponse)
async def get_thread_budgets(caller: AnyCaller, svc: Svc) -> ThreadBudgetListResponse:
    return await svc.usage.threads(caller)


@router.get("/usage/threads/{thread_id}", response_model=ThreadBudgetInfo)
async def get_thread_budget(thread_id: str, caller: AnyCaller, svc: Svc) -> ThreadBudgetInfo:
    return await svc.usage.thread(caller, thread_id)


@router.get("/usage/agents/{agent_id}", response_model=AgentUsageInfo)
async def get_agent_usage(agent_id: str, caller: AnyCaller, svc: Svc) -> AgentUsageInfo:
    return await svc.usage.agent(caller, agent_id)


@router.get("/usage/models/{model:path}", response_model=ModelUsageInfo)
async def get_model_usage(model: str, caller: AnyCaller, svc: Svc) -> ModelUsageInfo:
    return await svc.usage.model(caller, model)


@router.post("/usage/reset", response_model=ResetResponse)
async def reset_usage(caller: AnyCaller, svc: Svc) -> ResetResponse:
    return await svc.usage.reset(caller)
