"""The `/api/v1/usage` reply models, with seed 002's names and fields.

Additions (never renames): `cost_is_lower_bound` / `unpriced_requests` say when some
calls used a model with no price, so `total_cost` is a lower bound.
"""

from __future__ import annotations

from pydantic import BaseModel


class UsageTotals(BaseModel):
    total_tokens: int
    prompt_tokens: int
    completion_tokens: int
    request_count: int
    total_cost: float
    avg_latency_ms: float
    unpriced_requests: int = 0
    cost_is_lower_bound: bool = False


class AgentUsageInfo(BaseModel):
    agent_id: str
    total_tokens: int
    prompt_tokens: int
    completion_tokens: int
    request_count: int
    total_cost: float
    cost_is_lower_bound: bool = False


class ModelUsageInfo(BaseModel):
    model: str
    total_tokens: int
    prompt_tokens: int
    completion_tokens: int
    request_count: int
    total_cost: float
    cost_is_lower_bound: bool = False


class UsageOverview(BaseModel):
    totals: UsageTotals
    by_agent: list[AgentUsageInfo]
    by_model: list[ModelUsageInfo]
    active_threads: int


class UsageResponse(BaseModel):
    usage: UsageOverview


class ThreadBudgetInfo(BaseModel):
    thread_id: str
    max_tokens: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    remaining: int
    percent_used: float
    is_exhausted: bool


class ThreadBudgetListResponse(BaseModel):
    threads: list[ThreadBudgetInfo]
    count: int
    default_max_tokens: int


class ResetResponse(BaseModel):
    success: bool
    message: str
    scope: str  # "all" (operator) or the caller's account
