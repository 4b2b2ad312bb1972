"""`SessionMeter`: the budget gate one running turn hands its agent loop.

It gates every billable action on the session's cap and recorded spend, records each LLM
call in the call log and each admitted tool charge, and enforces the thread's token
budget. The numbers come from the database (so chained responses, approvals and restarts
all see the same ones): read once when the turn starts, then taken from what each of the
turn's own writes returns (the spend after it, computed in its transaction). A session runs
one turn at a time and every write to its spend goes through that turn's meter, so the
figures in hand are the stored ones; when two of the turn's writes overlap (parallel tool
calls) their order is unknown and the next check reads the database again.
"""

from __future__ import annotations

from collections.abc import Awaitable

from ..agent.budget import BillableAction, BudgetState
from ..agent.steps import AgentError, LlmCalled
from ..events.response import CostUsage
from ..store.usage import LlmCallRecord, SessionSpend, UsageStore
from .estimates import inference_estimate, token_cost
from .prices import PriceTable

EPSILON = 1e-12


def cost_usage(spend: SessionSpend) -> CostUsage:
    """The response's `usage.cost` block for a session's spend."""
    total = spend.total_usd
    return CostUsage(
        input_tokens=spend.input_tokens, output_tokens=spend.output_tokens,
        inference_usd=round(spend.inference_usd, 6), jobs_usd=round(spend.jobs_usd, 6),
        sandboxes_usd=round(spend.sandboxes_usd, 6), other_usd=round(spend.other_usd, 6),
        total_usd=round(total, 6), max_cost_usd=spend.max_cost_usd,
        remaining_usd=round(max(0.0, spend.max_cost_usd - total), 6),
        unpriced_actions=spend.unpriced, lower_bound=spend.unpriced > 0,
    )


def budget_state(spend: SessionSpend, estimate: float) -> BudgetState:
    cap, spent = spend.max_cost_usd, spend.total_usd
    return BudgetState(cap=cap, spent=round(spent, 6), remaining=round(max(0.0, cap - spent), 6),
                       estimate=round(estimate, 6))


def over_cap(spend: SessionSpend) -> bool:
    return spend.total_usd >= spend.max_cost_usd - EPSILON


class SessionMeter:
    def __init__(self, store: UsageStore, prices: PriceTable, *, account: str, session_id: str, response_id: str,
                 agent: str, default_max_tokens: int) -> None:
        self._store = store
        self._prices = prices
        self.account = account
        self.session_id = session_id
        self.response_id = response_id
        self.agent = agent
        self._default_max_tokens = default_max_tokens
        self._changed: SessionSpend | None = None
        self._known: SessionSpend | None = None  # the stored spend, as last read or written
        self._writing = 0  # writes in flight
        self._writes = 0  # writes started, ever
        self._overlapped = False  # two writes were in flight together since the last quiet moment

    # -- SpendGate ------------------------------------------------------------------
    def estimate_llm(self, model: str, messages: list[dict], tools: list[dict]) -> BillableAction:
        cost = inference_estimate(self._prices, model, messages, tools)
        return BillableAction(kind="inference", name=model, estimate_usd=cost.usd, priced=cost.priced)

    async def admit(self, actions: list[BillableAction], approved: bool = False) -> BudgetState | None:
        spend = await self.spend()
        estimate = sum(a.estimate_usd for a in actions)
        remaining = spend.max_cost_usd - spend.total_usd
        if over_cap(spend) or (not approved and estimate > remaining + EPSILON):
            return budget_state(spend, estimate)
        for action in actions:
            if action.kind != "inference" and (action.estimate_usd > 0 or not action.priced):
                self._changed = await self._written(self._store.add_charge(
                    self.account, self.session_id, self.response_id, action.kind, action.name, action.call_id,
                    action.estimate_usd, action.priced))
        return None

    async def before_llm(self) -> None:
        spend = await self.spend()  # the thread is the session: its tokens are the spend's
        used = spend.input_tokens + spend.output_tokens
        budget = self._default_max_tokens if spend.thread_max_tokens is None else spend.thread_max_tokens
        if used >= budget:
            raise AgentError(
                "thread_token_budget_exceeded",
                f"This thread has used {used:,} of its {budget:,}-token budget; no further model calls are made. "
                "Start a new conversation (without previous_response_id) to continue.",
            )

    # -- recording ------------------------------------------------------------------
    async def record_llm(self, step: LlmCalled) -> float | None:
        """Log the call with its actual cost; returns the cost (None when unpriced)."""
        cost = token_cost(self._prices, step.model, step.input_tokens, step.output_tokens)
        known = self._known
        self._changed = await self._written(self._store.record_llm_call(
            LlmCallRecord(account=self.account, thread_id=self.session_id, response_id=self.response_id,
                          agent=step.agent or self.agent, model=step.model, input_tokens=step.input_tokens,
                          output_tokens=step.output_tokens, cost_usd=cost.usd, priced=cost.priced,
                          latency_ms=step.latency_ms),
            self._default_max_tokens,
            budget_exists=known is not None and known.thread_max_tokens is not None,
        ))
        return cost.usd if cost.priced else None

    async def settle(self, call_id: str, actual_usd: float) -> None:
        """A tool reported what its call actually cost: it replaces the estimate."""
        self._changed = await self._written(self._store.settle_charge(self.session_id, call_id, max(0.0, actual_usd)))

    async def spend(self) -> SessionSpend:
        """The session's stored spend: the figures in hand, else read."""
        if self._known is not None:
            return self._known
        writes = self._writes
        spend = await self._store.session_spend(self.session_id)
        if self._writing == 0 and self._writes == writes:  # no write landed during the read
            self._known = spend
        return spend

    async def _written(self, write: Awaitable[SessionSpend]) -> SessionSpend:
        """Run one write; keep the spend it returns unless another write overlapped it."""
        self._known = None
        self._writes += 1
        self._writing += 1
        self._overlapped = self._overlapped or self._writing > 1
        try:
            spend = await write
        finally:
            self._writing -= 1
        if self._writing == 0:
            if not self._overlapped:
                self._known = spend
            self._overlapped = False
        return spend

    def take_change(self) -> SessionSpend | None:
        """The spend after the last recording, once (the runner turns it into an event)."""
        changed, self._changed = self._changed, None
        return changed
