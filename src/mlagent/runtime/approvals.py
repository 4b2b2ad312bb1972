"""Approvals: a turn that hits its budget pauses (`incomplete` / `approval_required`)
with the pending batch stored on its session; `POST /v1/responses/{id}/approvals`
answers it and the *same* response id continues (incomplete → queued → in_progress).

The batch lives in the database (`sessions.pending`), never only in memory, so a pause
survives a restart and is approved afterwards like any other.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..agent.budget import BillableAction, BudgetState, Paused, Resume
from ..auth.identity import Identity
from ..errors import ServiceError, not_found
from ..events.bus import EventBus
from ..events.response import BudgetContext, IncompleteDetails, PendingAction, ResponseObject
from ..events.types import ApprovalRequired, ResponseIncomplete, ResponseQueued
from ..store.approvals import ApprovalStore
from ..store.sessions import SessionStore
from ..store.turns import TurnStore
from ..store.usage import UsageStore
from ..usage.meter import budget_state, over_cap
from .live import LimitReached, LiveSessions
from .writer import EventWriter, GuardedWriter

if TYPE_CHECKING:
    from .runner import TurnRunner


class ApprovalRequest(BaseModel):
    """`POST /v1/responses/{id}/approvals` (seed 000)."""

    model_config = ConfigDict(extra="forbid")
    approve: bool = Field(strict=True)
    new_max_cost_usd: float | None = Field(None, gt=0, le=500, strict=True)
    feedback: str | None = Field(None, max_length=20_000)


class Decision(BaseModel):
    approve: bool
    feedback: str | None = None


class PendingBatch(BaseModel):
    """What `sessions.pending` holds while a response waits (and, once answered, until
    the runner picks the decision up)."""

    response_id: str
    batch: Literal["inference", "tools"]
    actions: list[BillableAction]
    budget: BudgetState
    decision: Decision | None = None
    created_at: float = Field(default_factory=time.time)

    @classmethod
    def load(cls, data: dict | None) -> PendingBatch | None:
        if not data:
            return None
        try:
            return cls.model_validate(data)
        except ValidationError:
            return None

    def to_resume(self) -> Resume:
        assert self.decision is not None
        return Resume(approve=self.decision.approve, feedback=self.decision.feedback, batch=self.batch,
                      calls=self.actions if self.batch == "tools" else [])


def approval_event(batch: Literal["inference", "tools"], actions: list[BillableAction], budget: BudgetState) -> ApprovalRequired:
    return ApprovalRequired(
        batch=batch,
        actions=[PendingAction(**a.model_dump()) for a in actions],
        budget=BudgetContext(**budget.model_dump()),
    )


async def emit_pause(writer: EventWriter, batch: Literal["inference", "tools"], actions: list[BillableAction],
                     budget: BudgetState, **snapshot: object) -> None:
    """`response.approval_required`, then `response.incomplete` (the stream ends there)."""
    await writer.emit(approval_event(batch, actions, budget))
    details = IncompleteDetails(reason="approval_required")
    await writer.emit(ResponseIncomplete(response=writer.state.model_copy(
        update={"status": "incomplete", "incomplete_details": details, **snapshot})))


async def pause_turn(writer: EventWriter, sessions: SessionStore, session_id: str, paused: Paused) -> None:
    """Persist the pending batch first (an approval may arrive the moment the pause is
    visible), then emit the pause."""
    pending = PendingBatch(response_id=writer.turn_id, batch=paused.batch, actions=paused.actions,
                           budget=paused.budget)
    await sessions.update(session_id, pending=pending.model_dump(mode="json"))
    await emit_pause(writer, paused.batch, paused.actions, paused.budget)


class ApprovalsService:
    def __init__(self, turns: TurnStore, sessions: SessionStore, approvals: ApprovalStore, usage: UsageStore,
                 bus: EventBus, live: LiveSessions, runner: TurnRunner, lease_seconds: float) -> None:
        self.turns = turns
        self.sessions = sessions
        self.approvals = approvals
        self.usage = usage
        self.bus = bus
        self.live = live
        self.runner = runner
        self.lease_seconds = lease_seconds

    async def submit(self, identity: Identity, response_id: str, req: ApprovalRequest) -> ResponseObject:
        turn = await self.turns.get(response_id)
        if turn is None or turn.account != identity.account:
            raise not_found("response", response_id)
        session = await self.sessions.require(turn.session_id)
        pending = PendingBatch.load(session.pending)
        reason = ((turn.snapshot or {}).get("incomplete_details") or {}).get("reason")
        if (turn.status != "incomplete" or reason != "approval_required" or pending is None
                or pending.response_id != response_id or pending.decision is not None):
            raise _nothing_pending(response_id, turn.status)
        cap = req.new_max_cost_usd if req.new_max_cost_usd is not None else session.max_cost_usd
        if req.approve:
            spend = await self.usage.session_spend(session.id)
            spend.max_cost_usd = cap
            if over_cap(spend):
                return await self._pause_again(turn, session.id, pending, budget_state(spend, pending.budget.estimate),
                                               cap)
        try:
            self.live.attach(session.id, identity.account, identity.token)
        except LimitReached as exc:
            raise ServiceError(429, "session_limit_reached", exc.message, retryable=False,
                               retry_after=exc.retry_after) from None
        await self.runner.finished(response_id)  # the paused run releases its lease first
        pending.decision = Decision(approve=req.approve, feedback=req.feedback)
        if not await self.approvals.resume(response_id, session.id, pending.model_dump(mode="json"),
                                           req.new_max_cost_usd, self.runner.owner, self.lease_seconds):
            raise _nothing_pending(response_id, "answered")
        fresh = await self.turns.require(response_id)
        writer = GuardedWriter(self.turns, self.bus, fresh)  # a cancel may have ended it meanwhile
        writer.add(ResponseQueued(response=writer.state.model_copy(update={
            "status": "queued", "incomplete_details": None, "pending_approval": None, "max_cost_usd": cap})))
        if fresh.status != "queued" or not await writer.commit("queued"):
            raise _nothing_pending(response_id, fresh.status if fresh.status != "queued" else "cancelled")
        self.runner.start(response_id, session.id)
        return writer.state

    async def _pause_again(self, turn, session_id: str, pending: PendingBatch, budget: BudgetState,
                           cap: float) -> ResponseObject:
        """Approving without headroom: the cap is applied and the response re-pauses at once."""
        pending.budget = budget
        await self.sessions.update(session_id, max_cost_usd=cap, pending=pending.model_dump(mode="json"))
        writer = EventWriter(self.turns, self.bus, turn.id, ResponseObject.model_validate(turn.snapshot), turn.last_seq)
        await emit_pause(writer, pending.batch, pending.actions, budget, max_cost_usd=cap)
        await writer.close()
        return writer.state


def _nothing_pending(response_id: str, status: str) -> ServiceError:
    return ServiceError(409, "no_pending_approval",
                        f"Response {response_id} has no action waiting for approval (status: {status}).",
                        retryable=False)
