"""One pydantic class per event, `type` as the discriminator, one union (`Event`).

Names follow OpenAI's Responses streaming events; mlagent's own events keep the
`response.` prefix so SDK parsers treat them as unknown-but-harmless.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, TypeAdapter

from .response import (
    Artifact,
    BudgetContext,
    CostUsage,
    OutputItem,
    OutputText,
    PendingAction,
    ResponseObject,
)


class _Event(BaseModel):
    sequence_number: int = -1


class _Lifecycle(_Event):
    response: ResponseObject


class ResponseCreated(_Lifecycle):
    type: Literal["response.created"] = "response.created"


class ResponseQueued(_Lifecycle):
    type: Literal["response.queued"] = "response.queued"


class ResponseInProgress(_Lifecycle):
    type: Literal["response.in_progress"] = "response.in_progress"


class ResponseCompleted(_Lifecycle):
    type: Literal["response.completed"] = "response.completed"


class ResponseFailed(_Lifecycle):
    type: Literal["response.failed"] = "response.failed"


class ResponseCancelled(_Lifecycle):
    """Logs written before cancellation ended with `response.failed` (status `cancelled`);
    kept so they replay. New cancellations use `cancelled_event`."""

    type: Literal["response.cancelled"] = "response.cancelled"


class ResponseIncomplete(_Lifecycle):
    type: Literal["response.incomplete"] = "response.incomplete"


class OutputItemAdded(_Event):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    output_index: int
    item: OutputItem


class OutputItemDone(_Event):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    output_index: int
    item: OutputItem


class ContentPartAdded(_Event):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ContentPartDone(_Event):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDelta(_Event):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = Field(default_factory=list)


class OutputTextDone(_Event):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = Field(default_factory=list)


class McpCallInProgress(_Event):
    """One of the agent's own tools started (its `mcp_call` item is at `output_index`)."""

    type: Literal["response.mcp_call.in_progress"] = "response.mcp_call.in_progress"
    item_id: str
    output_index: int


class McpCallCompleted(_Event):
    type: Literal["response.mcp_call.completed"] = "response.mcp_call.completed"
    item_id: str
    output_index: int


class McpCallFailed(_Event):
    type: Literal["response.mcp_call.failed"] = "response.mcp_call.failed"
    item_id: str
    output_index: int


class ReasoningTextDelta(_Event):
    type: Literal["response.reasoning_text.delta"] = "response.reasoning_text.delta"
    item_id: str
    output_index: int
    content_index: int = 0
    delta: str


class ReasoningTextDone(_Event):
    type: Literal["response.reasoning_text.done"] = "response.reasoning_text.done"
    item_id: str
    output_index: int
    content_index: int = 0
    text: str


class LlmCall(_Event):
    """Telemetry for one chat-completion call (forwarded as `response.llm_call`)."""

    type: Literal["response.llm_call"] = "response.llm_call"
    model: str
    latency_ms: float
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None
    cost_usd: float | None = None  # None: the model has no price
    agent: str | None = None  # a sub-agent's call (None: the session's agent)


class ToolLog(_Event):
    """The full text of a tool result; `output[]` keeps only the first 4 KB."""

    type: Literal["response.tool_log"] = "response.tool_log"
    call_id: str
    name: str
    text: str


class PlanUpdated(_Event):
    """The agent's current plan (from the `update_plan` tool)."""

    type: Literal["response.plan"] = "response.plan"
    steps: list[dict[str, str]]


class ArtifactCreated(_Event):
    """A Hub resource the turn produced (seed 000's artifacts table); aggregated, deduplicated,
    on the response's `artifacts[]`."""

    type: Literal["response.artifact.created"] = "response.artifact.created"
    artifact: Artifact
class ApprovalRequired(_Event):
    """The run pauses: the pending batch and the budget that stopped it (seed 000)."""

    type: Literal["response.approval_required"] = "response.approval_required"
    batch: Literal["inference", "tools"]
    actions: list[PendingAction]
    budget: BudgetContext


class CostUpdated(_Event):
    """The session's attributed spend after a billable action was recorded."""

    type: Literal["response.cost.updated"] = "response.cost.updated"
    cost: CostUsage


class ErrorEvent(_Event):
    """OpenAI's flat `error` stream event (never a top-level `error` key in data)."""

    type: Literal["error"] = "error"
    code: str | None = None
    message: str
    param: str | None = None


Event = Annotated[
    ResponseCreated
    | ResponseQueued
    | ResponseInProgress
    | ResponseCompleted
    | ResponseFailed
    | ResponseCancelled
    | ResponseIncomplete
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | McpCallInProgress
    | McpCallCompleted
    | McpCallFailed
    | ReasoningTextDelta
    | ReasoningTextDone
    | LlmCall
    | ToolLog
    | PlanUpdated
    | ArtifactCreated
    | ApprovalRequired
    | CostUpdated
    | ErrorEvent,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
KNOWN_EVENT_TYPES = frozenset(cls.model_fields["type"].default for cls in get_args(get_args(Event)[0]))

LIFECYCLE_TYPES = (
    ResponseCreated,
    ResponseQueued,
    ResponseInProgress,
    ResponseCompleted,
    ResponseFailed,
    ResponseCancelled,
    ResponseIncomplete,
)
def cancelled_event(state: ResponseObject) -> ResponseCancelled:
    """A cancellation's terminal event: `response.cancelled`, as seed 000 names it.

    OpenAI's typed stream has no such event (its SDK builds it loosely, keeping `type` and
    `response`); seed 000 promises it, and clients of the raw stream wait for it. The
    status `cancelled` is on the response either way (docs/responses-api.md)."""
    return ResponseCancelled(response=state.model_copy(update={"status": "cancelled", "incomplete_details": None}))


TERMINAL_EVENT_TYPES = frozenset({"response.completed", "response.failed", "response.cancelled"})
PAUSE_EVENT_TYPES = frozenset({"response.incomplete"})


class ForwardedEvent(_Event):
    """An internal event with no class of its own, forwarded as `response.<name>`.

    The reducer ignores it; clients should ignore event names they don't handle."""

    model_config = {"extra": "allow"}
    type: str


def parse_event(data: dict[str, Any] | str | bytes) -> Event | ForwardedEvent:
    raw = data if isinstance(data, dict) else json.loads(data)
    if raw.get("type") in KNOWN_EVENT_TYPES:
        return EVENT_ADAPTER.validate_python(raw)
    return ForwardedEvent.model_validate(raw)


def ends_stream(event_type: str) -> bool:
    """A stream ends at a terminal event or a pause (`response.incomplete`)."""
    return event_type in TERMINAL_EVENT_TYPES or event_type in PAUSE_EVENT_TYPES


class StoredEvent:
    """An event as the log holds it: its number, type, and JSON exactly as appended (not
    to be changed once made).

    Its server-sent-event frames are encoded once, on first use, and shared by every
    stream that sends this object (the bus hands the same objects to all subscribers).
    A plain class with slots, not a frozen dataclass with `cached_property`: a replay
    makes one per event, and those cost ~3x as much to build and encode (3.11's
    `cached_property` takes a lock)."""

    __slots__ = ("seq", "type", "data", "_sse", "_sse_with_id")

    def __init__(self, seq: int, type: str, data: str) -> None:  # noqa: A002 - the log's column
        self.seq = seq
        self.type = type
        self.data = data
        self._sse: bytes | None = None
        self._sse_with_id: bytes | None = None

    @property
    def sse(self) -> bytes:
        """The frame without an `id:` line (the OpenAI-form streams)."""
        frame = self._sse
        if frame is None:
            frame = self._sse = f"event: {self.type}\ndata: {self.data}\n\n".encode()
        return frame

    @property
    def sse_with_id(self) -> bytes:
        """The frame with `id: <seq>` (EventSource clients resume from it)."""
        frame = self._sse_with_id
        if frame is None:
            frame = self._sse_with_id = f"id: {self.seq}\nevent: {self.type}\ndata: {self.data}\n\n".encode()
        return frame

    def _key(self) -> tuple[int, str, str]:
        return self.seq, self.type, self.data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredEvent) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"StoredEvent(seq={self.seq!r}, type={self.type!r}, data={self.data!r})"
