"""What the agent loop yields: small typed steps the runtime turns into response events."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from .notices import Notice


class TextStarted(BaseModel):
    kind: Literal["text_started"] = "text_started"


class TextDelta(BaseModel):
    kind: Literal["text_delta"] = "text_delta"
    delta: str


class TextDone(BaseModel):
    kind: Literal["text_done"] = "text_done"
    text: str


class ToolCalled(BaseModel):
    kind: Literal["tool_called"] = "tool_called"
    call_id: str
    name: str
    arguments: str


class ToolReturned(BaseModel):
    kind: Literal["tool_returned"] = "tool_returned"
    call_id: str
    name: str
    output: str
    duration_ms: float | None = None


class ClientCall(BaseModel):
    call_id: str
    name: str
    arguments: str


class ClientToolCalls(BaseModel):
    """The model called tools the client brought: the turn ends for the client to run them
    (it answers with `function_call_output` items in its next request)."""

    kind: Literal["client_tool_calls"] = "client_tool_calls"
    calls: list[ClientCall]


class ReasoningStarted(BaseModel):
    kind: Literal["reasoning_started"] = "reasoning_started"


class ReasoningDelta(BaseModel):
    kind: Literal["reasoning_delta"] = "reasoning_delta"
    delta: str


class ReasoningDone(BaseModel):
    kind: Literal["reasoning_done"] = "reasoning_done"
    text: str


class LlmCalled(BaseModel):
    kind: Literal["llm_called"] = "llm_called"
    model: str
    latency_ms: float
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None
    cost_usd: float | None = None  # set by the runtime's meter; None when unpriced
    agent: str | None = None  # set for a model call a tool made itself (e.g. a sub-agent)


class Checkpoint(BaseModel):
    """The history after a step; the runtime persists it so a session survives a crash."""

    kind: Literal["checkpoint"] = "checkpoint"
    messages: list[dict[str, Any]]


Step = (TextStarted | TextDelta | TextDone | ToolCalled | ToolReturned | LlmCalled | Checkpoint | Notice
        | ClientToolCalls | ReasoningStarted | ReasoningDelta | ReasoningDone)


class AgentError(Exception):
    """A failure inside the run; the turn ends `failed` with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
