"""The budget gate the loop asks before every billable action, and the pause it yields.

The loop owns no storage: the runtime hands it a `SpendGate` (implemented in
`mlagent.usage.meter`) that knows the session's cap and spend. When the gate says no,
the loop yields a `Paused` step and returns; it never waits for a person.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

ActionKind = Literal["inference", "job", "sandbox", "tool"]


class BillableAction(BaseModel):
    """One action about to run, with what it is expected to cost the caller."""

    kind: ActionKind
    name: str  # the model id for inference, else the tool name
    call_id: str | None = None
    arguments: str | None = None
    estimate_usd: float = 0.0
    priced: bool = True  # False: no price is known, the estimate is a lower bound


class BudgetState(BaseModel):
    """The session's budget when a pause happens (seed 000: cap, spent, remaining, estimate)."""

    cap: float
    spent: float
    remaining: float
    estimate: float


class Paused(BaseModel):
    """A step: the run stops here until the pending batch is approved or denied."""

    kind: Literal["paused"] = "paused"
    batch: Literal["inference", "tools"]
    actions: list[BillableAction] = Field(default_factory=list)
    budget: BudgetState


class Resume(BaseModel):
    """How the runtime restarts a paused run: the decision on the pending batch.

    For a tool batch, `calls` are the assistant's tool calls that have not run yet.
    """

    approve: bool
    feedback: str | None = None
    batch: Literal["inference", "tools"]
    calls: list[BillableAction] = Field(default_factory=list)


class SpendGate(Protocol):
    def estimate_llm(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> BillableAction:
        """What the next chat completion is expected to cost."""

    async def admit(self, actions: list[BillableAction], approved: bool = False) -> BudgetState | None:
        """None when the actions may run (their charges are then recorded), else the
        budget that makes them wait. `approved` skips the estimate-vs-remaining check,
        never the spent-reached-cap one."""

    async def before_llm(self) -> None:
        """Raise `AgentError` when the thread's token budget is exhausted."""


class NoBudget:
    """A gate that admits everything (runs without cost control, e.g. sub-agents in tests)."""

    def estimate_llm(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> BillableAction:
        return BillableAction(kind="inference", name=model)

    async def admit(self, actions: list[BillableAction], approved: bool = False) -> BudgetState | None:
        return None

    async def before_llm(self) -> None:
        return None


def denial_text(feedback: str | None) -> str:
    text = "Not run: the user denied this action (budget approval)."
    if feedback:
        text += f" Their feedback: {feedback}"
    return text
