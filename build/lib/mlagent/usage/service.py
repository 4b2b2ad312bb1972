"""`UsageService`: what `/api/v1/usage` calls. A caller sees its own usage; the
operator sees, and resets, everyone's."""

from __future__ import annotations

from collections.abc import Callable

from ..auth.identity import Identity
from ..errors import not_found
from ..store.usage import ThreadBudget, Totals, UsageStore
from .models import (
    AgentUsageInfo,
    ModelUsageInfo,
    ResetResponse,
    ThreadBudgetInfo,
    ThreadBudgetListResponse,
    UsageOverview,
    UsageResponse,
    UsageTotals,
)


def _scope(identity: Identity) -> str | None:
    return None if identity.is_operator else identity.account


def _cost(t: Totals) -> float:
    return round(t.total_cost, 9)


def _budget_info(b: ThreadBudget) -> ThreadBudgetInfo:
    total = b.prompt_tokens + b.completion_tokens
    remaining = max(0, b.max_tokens - total)
    percent = (total / b.max_tokens * 100) if b.max_tokens > 0 else 0.0
    return ThreadBudgetInfo(thread_id=b.thread_id, max_tokens=b.max_tokens, prompt_tokens=b.prompt_tokens,
                            completion_tokens=b.completion_tokens, total_tokens=total, remaining=remaining,
                            percent_used=round(percent, 1), is_exhausted=remaining <= 0)


class UsageService:
    def __init__(self, store: UsageStore, default_max_tokens: Callable[[], int]) -> None:
        self.store = store
        self.default_max_tokens = default_max_tokens  # the budget a new thread of the default agent gets

    async def overview(self, identity: Identity) -> UsageResponse:
        scope = _scope(identity)
        (t,) = await self.store.totals(scope)
        totals = UsageTotals(
            total_tokens=t.prompt_tokens + t.completion_tokens, prompt_tokens=t.prompt_tokens,
            completion_tokens=t.completion_tokens, request_count=t.request_count, total_cost=_cost(t),
            avg_latency_ms=round(t.latency_ms_sum / t.request_count, 3) if t.request_count else 0.0,
            unpriced_requests=t.unpriced, cost_is_lower_bound=t.unpriced > 0,
        )
        by_agent = [self._agent(r.key, r) for r in await self.store.totals(scope, "agent")]
        by_model = [self._model(r.key, r) for r in await self.store.totals(scope, "model")]
        return UsageResponse(usage=UsageOverview(totals=totals, by_agent=by_agent, by_model=by_model,
                                                 active_threads=t.threads))

    @staticmethod
    def _agent(agent_id: str, t: Totals | None) -> AgentUsageInfo:
        if t is None:
            return AgentUsageInfo(agent_id=agent_id, total_tokens=0, prompt_tokens=0, completion_tokens=0,
                                  request_count=0, total_cost=0.0)
        return AgentUsageInfo(agent_id=agent_id, total_tokens=t.prompt_tokens + t.completion_tokens,
                              prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
                              request_count=t.request_count, total_cost=_cost(t), cost_is_lower_bound=t.unpriced > 0)

    @staticmethod
    def _model(model: str, t: Totals | None) -> ModelUsageInfo:
        if t is None:
            return ModelUsageInfo(model=model, total_tokens=0, prompt_tokens=0, completion_tokens=0,
                                  request_count=0, total_cost=0.0)
        return ModelUsageInfo(model=model, total_tokens=t.prompt_tokens + t.completion_tokens,
                              prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
                              request_count=t.request_count, total_cost=_cost(t), cost_is_lower_bound=t.unpriced > 0)

    async def agent(self, identity: Identity, agent_id: str) -> AgentUsageInfo:
        rows = await self.store.totals(_scope(identity), "agent", agent_id)
        return self._agent(agent_id, rows[0] if rows else None)

    async def model(self, identity: Identity, model: str) -> ModelUsageInfo:
        rows = await self.store.totals(_scope(identity), "model", model)
        return self._model(model, rows[0] if rows else None)

    async def threads(self, identity: Identity) -> ThreadBudgetListResponse:
        infos = [_budget_info(b) for b in await self.store.budgets(_scope(identity))]
        infos.sort(key=lambda t: (t.percent_used, t.total_tokens), reverse=True)  # hottest first
        return ThreadBudgetListResponse(threads=infos, count=len(infos), default_max_tokens=self.default_max_tokens())

    async def thread(self, identity: Identity, thread_id: str) -> ThreadBudgetInfo:
        rows = await self.store.budgets(_scope(identity), thread_id)
        if not rows:
            raise not_found("thread budget", thread_id, "thread_id")
        return _budget_info(rows[0])

    async def reset(self, identity: Identity) -> ResetResponse:
        scope = _scope(identity)
        await self.store.reset(scope)
        who = "all accounts" if scope is None else f"account {scope!r}"
        return ResetResponse(success=True, message=f"Usage counters reset for {who}; the call log is kept.",
                             scope="all" if scope is None else scope)
