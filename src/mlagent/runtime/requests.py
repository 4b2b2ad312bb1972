"""The typed request of `POST /v1/responses` (seed 000's request body, plus the rest of
OpenAI's Responses surface: docs/responses-api.md has the table of what each field does)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

# OpenAI request fields an SDK may send that need nothing from mlagent (see docs/responses-api.md).
IGNORED_OPENAI_FIELDS = ("stream_options",)

# OpenAI request fields mlagent refuses when they are set (a 400 naming the field), and why.
REFUSED_OPENAI_FIELDS = {
    "conversation": "The Conversations API is not supported: chain turns with previous_response_id "
                    "(see docs/responses-api.md).",
    "prompt": "Stored prompt templates are not supported: send instructions and input.",
    "context_management": "Server-side compaction settings are not supported: use truncation.",
    "prompt_cache_retention": "Prompt cache retention is decided by the inference provider, not this server.",
    "background_options": "Not supported.",
}


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant", "system", "developer"] = "user"
    content: str | list[dict[str, Any]]
    type: Literal["message"] | None = None
    id: str | None = None


class FunctionCallInput(BaseModel):
    """A call of one of the client's tools, replayed as context (the Agents SDK sends the
    whole conversation this way when it does not chain with previous_response_id)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=128)
    arguments: str = Field(max_length=100_000)
    id: str | None = None


class FunctionCallOutputInput(BaseModel):
    """The client's result of a `function_call` item."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=200)
    output: str | list[dict[str, Any]]
    id: str | None = None


class McpCallInput(BaseModel):
    """One of the agent's own tool runs from an earlier response, replayed as context."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["mcp_call"]
    name: str = Field(min_length=1, max_length=128)
    arguments: str = Field(max_length=100_000)
    output: str | None = Field(None, max_length=100_000)
    server_label: str | None = None
    id: str | None = None
    call_id: str | None = None


class ReasoningInput(BaseModel):
    """An earlier response's reasoning item: accepted and not replayed (chat-completion
    upstreams take no reasoning as input)."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["reasoning"]
    id: str | None = None


def _item_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"item:{kind or 'message'}"


InputItem = Annotated[
    Annotated[InputMessage, Tag("item:message")]
    | Annotated[FunctionCallInput, Tag("item:function_call")]
    | Annotated[FunctionCallOutputInput, Tag("item:function_call_output")]
    | Annotated[McpCallInput, Tag("item:mcp_call")]
    | Annotated[ReasoningInput, Tag("item:reasoning")],
    Discriminator(_item_kind, custom_error_type="unsupported_input_item",
                  custom_error_message="unsupported input item type; this server takes message, function_call, "
                                       "function_call_output, mcp_call and reasoning items"),
]


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["text", "json_schema", "json_object"]
    name: str | None = Field(None, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = Field(None, strict=True)
    description: str | None = None


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


class CreateResponseRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[InputItem] = Field(min_length=1)
    model: str | None = None
    instructions: str | None = None
    background: bool = Field(False, strict=True)
    stream: bool = Field(False, strict=True)
    previous_response_id: str | None = None
    max_cost_usd: float | None = Field(None, gt=0, le=500, strict=True)
    wait_timeout_seconds: float = Field(900, ge=1, le=3600, strict=True)
    metadata: dict[str, str] | None = None
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = Field(None, strict=True)
    text: TextConfig | None = None
    temperature: float | None = Field(None, ge=0, le=2, strict=True)
    top_p: float | None = Field(None, ge=0, le=1, strict=True)
    max_output_tokens: int | None = Field(None, ge=16, strict=True)
    max_tool_calls: int | None = Field(None, ge=1, strict=True)
    reasoning: ReasoningConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = Field(None, max_length=32)
    store: bool | None = Field(None, strict=True)
    prompt_cache_key: str | None = Field(None, max_length=256)
    safety_identifier: str | None = Field(None, max_length=256)
    user: str | None = Field(None, max_length=256)
    service_tier: Literal["auto", "default", "flex", "scale", "priority"] | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20, strict=True)

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if len(value) > 16:
                raise ValueError("at most 16 key/value pairs")
            for k, v in value.items():
                if len(k) > 64 or len(v) > 512:
                    raise ValueError("keys are at most 64 characters and values at most 512")
        return value

    def unknown_fields(self) -> list[str]:
        return [k for k in (self.model_extra or {}) if k not in IGNORED_OPENAI_FIELDS and k not in REFUSED_OPENAI_FIELDS]

    def refused_fields(self) -> list[str]:
        return [k for k, v in (self.model_extra or {}).items() if k in REFUSED_OPENAI_FIELDS and v is not None]

    @property
    def output_format(self) -> dict[str, Any] | None:
        fmt = self.text.format if self.text is not None else None
        if fmt is None or fmt.type == "text":
            return None
        return fmt.model_dump(by_alias=True, exclude_none=True)

    def stored(self) -> dict[str, Any]:
        """What the worker needs, as persisted on the turn (never the token)."""
        data = self.model_dump(include={"input", "instructions", "metadata"}, exclude_none=True)
        if isinstance(self.input, list):
            data["input"] = [m.model_dump(exclude_none=True) for m in self.input]
        return data


class InputTokensRequest(CreateResponseRequest):
    """`POST /v1/responses/input_tokens`: the create body; `input` may be left out."""

    input: str | list[InputItem] | None = None  # type: ignore[assignment]

    def stored(self) -> dict[str, Any]:
        return super().stored() if self.input is not None else {"input": []}
