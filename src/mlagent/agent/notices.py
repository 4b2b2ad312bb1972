"""What a tool reports while it runs (`ctx.notify(CostNotice(usd=0.12))`): a small closed set
of typed notices. The loop yields them as steps; the runtime routes each one to the turn's
events, call log or charges in one place (`runtime/notices.py`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Notice(BaseModel):
    model_config = ConfigDict(frozen=True)


class ArtifactNotice(_Notice):
    """A Hub resource the tool made or updated (seed 000's artifact): its `type` and its own
    fields (`repo_id`, `id`, `url`, …), in the order given; they reach `artifacts[]` as is."""

    model_config = ConfigDict(frozen=True, extra="allow")
    kind: Literal["artifact"] = "artifact"
    type: str

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude={"kind"})


class CostNotice(_Notice):
    """The actual cost of a tool call, replacing the estimate the budget admitted. Without
    `call_id` it is the running call's own; with one it settles an earlier call's (an HF Job
    that ended after the call that launched it returned)."""

    kind: Literal["cost"] = "cost"
    usd: float
    call_id: str | None = None


class JobStatusNotice(_Notice):
    """An HF Job's stage changed while a tool waited on it (`response.job_status`)."""

    kind: Literal["job_status"] = "job_status"
    job_id: str
    stage: str
    message: str | None
    url: str


class LlmCallNotice(_Notice):
    """A model call the tool made itself (a sub-agent): logged and charged like the turn's own."""

    kind: Literal["llm_call"] = "llm_call"
    model: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    agent: str | None = None  # None: the agent running the tool


class PlanNotice(_Notice):
    """The agent's current plan (`update_plan`), each step `{"step", "status"}`."""

    kind: Literal["plan"] = "plan"
    steps: list[dict[str, str]]


Notice = ArtifactNotice | CostNotice | JobStatusNotice | LlmCallNotice | PlanNotice
