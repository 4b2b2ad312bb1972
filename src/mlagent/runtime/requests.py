"""The typed request of `POST /v1/responses` (seed 000's request body)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# OpenAI request fields an SDK may send that mlagent accepts and does not act on.
IGNORED_OPENAI_FIELDS = (
    "store", "temperature", "top_p", "tool_choice", "parallel_tool_calls", "user", "truncation", "text",
    "reasoning", "max_output_tokens", "include", "service_tier", "prompt_cache_key", "safety_identifier",
    "stream_options", "top_logprobs", "max_tool_calls",
)


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["user", "assistant", "system", "developer"] = "user"
    content: str | list[dict[str, Any]]
    type: Literal["message"] | None = None


class CreateResponseRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[InputMessage] = Field(min_length=1)
    model: str | None = None
    instructions: str | None = None
    background: bool = Field(False, strict=True)
    stream: bool = Field(False, strict=True)
    previous_response_id: str | None = None
    max_cost_usd: float | None = Field(None, gt=0, le=500, strict=True)
    wait_timeout_seconds: float = Field(900, ge=1, le=3600, strict=True)
    metadata: dict[str, str] | None = None
    tools: list[dict[str, Any]] | None = None

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
        return [k for k in (self.model_extra or {}) if k not in IGNORED_OPENAI_FIELDS]

    def stored(self) -> dict[str, Any]:
        """What the worker needs, as persisted on the turn (never the token)."""
        data = self.model_dump(include={"input", "instructions", "metadata"}, exclude_none=True)
        if isinstance(self.input, list):
            data["input"] = [m.model_dump(exclude_none=True) for m in self.input]
        return data
