"""What a request asks of one turn beyond its input: the client's tools, the tool choice,
sampling settings and the answer's format — and the check that the answer keeps that format."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .llm import ModelOptions
from .steps import AgentError


@dataclass
class TurnOptions:
    client_tools: list[dict[str, Any]] = field(default_factory=list)  # chat-completions tool specs
    model: ModelOptions = field(default_factory=ModelOptions)
    # Applies to the turn's first model call ("none" to every call): a forced call repeated
    # on every step would never let the model answer.
    tool_choice: str | dict[str, Any] | None = None
    output_format: dict[str, Any] | None = None  # the request's text.format (json_schema / json_object)
    max_tool_calls: int | None = None
    compact: bool = True  # truncation "auto": elide old tool results when the context fills

    @property
    def client_names(self) -> set[str]:
        return {t["function"]["name"] for t in self.client_tools}


def check_output(text: str, fmt: dict[str, Any] | None) -> None:
    """Raise `AgentError` when the final answer does not keep the requested format."""
    if not fmt or fmt.get("type") not in ("json_schema", "json_object"):
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AgentError("invalid_structured_output",
                         f"The model's answer is not valid JSON ({exc.msg} at character {exc.pos}); "
                         "text.format asked for JSON.") from None
    if fmt["type"] == "json_object":
        if not isinstance(value, dict):
            raise AgentError("invalid_structured_output", "The model's answer is JSON but not an object; "
                             "text.format json_object asked for one.")
        return
    import jsonschema  # ~0.1 CPU-s to import: only for answers that must match a schema

    try:
        jsonschema.validate(value, fmt.get("schema") or {})
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise AgentError("invalid_structured_output",
                         f"The model's answer does not match the schema {fmt.get('name')!r} at {where}: "
                         f"{exc.message[:300]}.") from None
