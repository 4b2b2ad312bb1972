"""`StoredRequest`: what a turn was asked, as persisted on its row (never a token).

Every surface that creates a turn (`/v1/responses`, tasks, operator inject) writes one, and
the worker reads it back typed. Rows written before this model existed are plain dicts with
the same keys, except that a task on the server's key said `server_llm_key: true`; it loads
as `credential="server"`. Unknown keys are ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..agent.llm import ModelOptions
from ..agent.options import TurnOptions

# Whose LLM key pays for the turn: the caller's token held by the live session, or the
# server's own `MLAGENT_INFERENCE_API_KEY` (an API-key caller, or an operator inject into a
# thread that holds no token). On the server's key, tools get no token to act with.
Credential = Literal["caller", "server"]


class StoredRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str | list[dict[str, Any]]
    instructions: str | None = None
    metadata: dict[str, str] | None = None
    credential: Credential = "caller"
    # The loop's settings from the request (`runtime/surface.py`, `turn_settings`).
    client_tools: list[dict[str, Any]] = Field(default_factory=list)  # chat-completions tool specs
    model_options: dict[str, Any] = Field(default_factory=dict)
    tool_choice: str | dict[str, Any] | None = None
    output_format: dict[str, Any] | None = None
    max_tool_calls: int | None = None
    truncation: Literal["auto", "disabled"] = "auto"
    # A task's `tools`, resolved: the only tools the agent may use (None: all).
    allowed_tools: list[str] | None = None
    # An operator inject: the agent addressed, who sent it and the payload as sent.
    agent: str | None = None
    sender: str | None = None
    payload: Any = None

    @model_validator(mode="before")
    @classmethod
    def _old_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("server_llm_key"):
            data = {**data, "credential": "server"}
        return data

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> StoredRequest:
        return cls.model_validate(data or {"input": ""})

    def dump(self) -> dict[str, Any]:
        """The row's JSON: only what differs from the defaults."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def options(self) -> TurnOptions:
        """The agent loop's view of the turn's settings."""
        return TurnOptions(client_tools=list(self.client_tools), model=ModelOptions(**self.model_options),
                           tool_choice=self.tool_choice, output_format=self.output_format,
                           max_tool_calls=self.max_tool_calls, compact=self.truncation != "disabled")
