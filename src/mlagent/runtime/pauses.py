"""A turn paused on its budget: the pending batch stored on its session and the pause
events (`response.approval_required`, then `response.incomplete`). The runner pauses a
turn here; `runtime/approvals.py` answers it.

The batch lives in the database (`sessions.pending`), never only in memory, so a pause
survives a restart and is approved afterwards like any other.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ..agent.budget import BillableAction, BudgetState, Paused, Resume
from ..events.response import BudgetContext, IncompleteDetails, PendingAction
from ..events.types import ApprovalRequired, ResponseIncomplete
from ..store.protocols import Sessions
from .writer import EventWriter


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
    def load(cls, data: dict[str, Any] | None) -> PendingBatch | None:
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


def approval_event(batch: str, actions: list[BillableAction], budget: BudgetState) -> ApprovalRequired:
    return ApprovalRequired(
        batch=batch,
        actions=[PendingAction(**a.model_dump()) for a in actions],
        budget=BudgetContext(**budget.model_dump()),
    )


async def emit_pause(writer: EventWriter, batch: str, actions: list[BillableAction], budget: BudgetState,
                     **snapshot: object) -> None:
    """`response.approval_required`, then `response.incomplete` (the stream ends there)."""
    await writer.emit(approval_event(batch, actions, budget))
    details = IncompleteDetails(reason="approval_required")
    await writer.emit(ResponseIncomplete(response=writer.state.model_copy(
        update={"status": "incomplete", "incomplete_details": details, **snapshot})))


async def pause_turn(writer: EventWriter, sessions: Sessions, session_id: str, paused: Paused) -> None:
    """Persist the pending batch first (an approval may arrive the moment the pause is
    visible), then emit the pause."""
    pending = PendingBatch(response_id=writer.turn_id, batch=paused.batch, actions=paused.actions,
                           budget=paused.budget)
    await sessions.update(session_id, pending=pending.model_dump(mode="json"))
    await emit_pause(writer, paused.batch, paused.actions, paused.budget)
