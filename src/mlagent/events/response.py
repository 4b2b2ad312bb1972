"""The response object (OpenAI Responses API shape, with mlagent's documented extensions)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

Status = Literal["queued", "in_progress", "completed", "failed", "cancelled", "incomplete"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


class OutputText(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str = ""
    annotations: list[dict[str, Any]] = Field(default_factory=list)


class MessageItem(BaseModel):
    type: Literal["message"] = "message"
    id: str
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"] = "in_progress"
    content: list[OutputText] = Field(default_factory=list)


class FunctionCallItem(BaseModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


class FunctionCallOutputItem(BaseModel):
    type: Literal["function_call_output"] = "function_call_output"
    id: str
    call_id: str
    output: str
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


class McpCallItem(BaseModel):
    """A run of one of the agent's own (server-side) tools, in OpenAI's hosted-tool shape:
    clients such as the Agents SDK treat an `mcp_call` as already executed. `call_id` (the
    model's tool-call id, as in `response.tool_log`) and `duration_ms` are mlagent's extensions."""

    type: Literal["mcp_call"] = "mcp_call"
    id: str
    server_label: str = "mlagent"
    name: str
    arguments: str
    output: str | None = None
    error: dict[str, Any] | None = None
    status: Literal["in_progress", "completed", "incomplete", "calling", "failed"] = "in_progress"
    call_id: str
    duration_ms: float | None = None


class ReasoningText(BaseModel):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str = ""


class ReasoningItem(BaseModel):
    """The model's reasoning, when the upstream streams it (`reasoning_content`)."""

    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[dict[str, Any]] = Field(default_factory=list)
    content: list[ReasoningText] = Field(default_factory=list)
    status: Literal["in_progress", "completed", "incomplete"] = "in_progress"


# `function_call` items are calls of the client's own tools (the response completes for the
# client to run them); `function_call_output` items only appear in logs written before mlagent
# reported its own tool runs as `mcp_call` items, and are kept so those logs still replay.
OutputItem = Annotated[MessageItem | FunctionCallItem | FunctionCallOutputItem | McpCallItem | ReasoningItem,
                       Field(discriminator="type")]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class CostUsage(BaseModel):
    """mlagent's extension: the session window's attributed spend (seed 000, "Cost
    control"): every response of the session so far, split by inference, jobs and
    sandboxes. `lower_bound` is true when an action had no known price."""

    scope: Literal["session"] = "session"
    input_tokens: int = 0
    output_tokens: int = 0
    inference_usd: float = 0.0
    jobs_usd: float = 0.0
    sandboxes_usd: float = 0.0
    other_usd: float = 0.0
    total_usd: float = 0.0
    max_cost_usd: float = 0.0
    remaining_usd: float = 0.0
    unpriced_actions: int = 0
    lower_bound: bool = False


class Usage(BaseModel):
    """OpenAI's usage block (this response's tokens); `cost` is mlagent's extension."""

    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0
    llm_calls: int = 0
    cost: CostUsage | None = None


class ResponseError(BaseModel):
    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: str


class PendingAction(BaseModel):
    """An action waiting for approval: a model call or a tool call, with its estimate."""

    kind: str  # inference | job | sandbox | tool
    name: str
    call_id: str | None = None
    arguments: str | None = None
    estimate_usd: float = 0.0
    priced: bool = True


class BudgetContext(BaseModel):
    cap: float
    spent: float
    remaining: float
    estimate: float


class PendingApproval(BaseModel):
    """mlagent's extension: what a response paused on `approval_required` waits for."""

    batch: Literal["inference", "tools"]
    actions: list[PendingAction]
    budget: BudgetContext


class Artifact(BaseModel):
    """A Hub resource produced by a turn (seed 000's artifacts table)."""

    type: str
    model_config = {"extra": "allow"}


class ResponseObject(BaseModel):
    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Status = "queued"
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[OutputItem] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: dict[str, Any] | None = None
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float | None = None
    truncation: str = "auto"
    usage: Usage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    store: bool = True
    max_tool_calls: int | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    # mlagent extensions (seed 000)
    session_id: str
    max_cost_usd: float
    artifacts: list[Artifact] = Field(default_factory=list)
    pending_approval: PendingApproval | None = None

    @property
    def output_text(self) -> str:
        return "".join(
            part.text for item in self.output if isinstance(item, MessageItem) for part in item.content
        )
