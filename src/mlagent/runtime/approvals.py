"""Approvals: a turn that hits its budget pauses (`incomplete` / `approval_required`)
with the pending batch stored on its session (`runtime/pauses.py`);
`POST /v1/responses/{id}/approvals` answers it and the *same* response id continues
(incomplete → queued → in_progress).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..agent.budget import BudgetState
from ..auth.identity import Identity
from ..errors import ServiceError, not_found
from ..events.response import ResponseObject
from ..store.protocols import Approvals, Sessions, Turns
from ..store.records import TurnRecord
from ..store.usage import UsageStore
from ..usage.meter import budget_state, over_cap
from .pauses import Decision, PendingBatch, emit_pause
from .turnqueue import TurnQueue


class ApprovalRequest(BaseModel):
    """`POST /v1/responses/{id}/approvals` (seed 000)."""

    model_config = ConfigDict(extra="forbid")
    approve: bool = Field(strict=True)
    new_max_cost_usd: float | None = Field(None, gt=0, le=500, strict=True)
    feedback: str | None = Field(None, max_length=20_000)


class ApprovalsService:
    def __init__(self, turns: Turns, sessions: Sessions, approvals: Approvals, usage: UsageStore,
                 queue: TurnQueue) -> None:
        self.turns = turns
        self.sessions = sessions
        self.approvals = approvals
        self.usage = usage
        self.queue = queue

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
        self.queue.attach(session.id, identity.account, identity.token)
        await self.queue.let_go(response_id)  # the paused run releases its lease first
        pending.decision = Decision(approve=req.approve, feedback=req.feedback)
        if not await self.approvals.resume(response_id, session.id, pending.model_dump(mode="json"),
                                           req.new_max_cost_usd, self.queue.owner, self.queue.settings.lease_seconds):
            raise _nothing_pending(response_id, "answered")
        resumed = await self.queue.requeue(response_id, session.id, incomplete_details=None, pending_approval=None,
                                           max_cost_usd=cap)  # a cancel may have ended it meanwhile
        if resumed is None:
            now = await self.turns.get(response_id)
            raise _nothing_pending(response_id, "cancelled" if now is None or now.status == "queued" else now.status)
        return resumed

    async def _pause_again(self, turn: TurnRecord, session_id: str, pending: PendingBatch, budget: BudgetState,
                           cap: float) -> ResponseObject:
        """Approving without headroom: the cap is applied and the response re-pauses at once."""
        pending.budget = budget
        await self.sessions.update(session_id, max_cost_usd=cap, pending=pending.model_dump(mode="json"))
        writer = self.queue.reopen(turn)
        await emit_pause(writer, pending.batch, pending.actions, budget, max_cost_usd=cap)
        await writer.close()
        return writer.state


def _nothing_pending(response_id: str, status: str) -> ServiceError:
    return ServiceError(409, "no_pending_approval",
                        f"Response {response_id} has no action waiting for approval (status: {status}).",
                        retryable=False)
