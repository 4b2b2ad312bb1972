"""The Responses-API fields beyond `input`: checked (each refusal a 400 naming its field),
turned into the turn's settings for the agent loop, and echoed on the response object.

The table of what each field does is docs/responses-api.md."""

from __future__ import annotations

import re
from typing import Any, Literal

from ..agent.history import content_text
from ..errors import ServiceError
from .requests import (
    REFUSED_OPENAI_FIELDS,
    CreateResponseRequest,
    FunctionCallInput,
    FunctionCallOutputInput,
)
from .stored import StoredRequest

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# The Responses API's `include` values (OpenAI's `Includable`): the OpenAPI document lists them,
# so an unknown one is refused at the boundary wherever `include` is read.
Includable = Literal[
    "code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results",
    "web_search_call.results", "web_search_call.action.sources", "message.input_image.image_url",
    "message.output_text.logprobs", "reasoning.encrypted_content",
]
# `include` values that name items this server never produces: accepted, nothing to add.
NO_OP_INCLUDES = frozenset({
    "code_interpreter_call.outputs", "computer_call_output.output.image_url", "file_search_call.results",
    "web_search_call.results", "web_search_call.action.sources", "message.input_image.image_url",
})
REFUSED_INCLUDES = {
    "message.output_text.logprobs": "log probabilities are not collected from the upstream model",
    "reasoning.encrypted_content": "reasoning is returned in plain text (reasoning items), never encrypted",
}


def bad(param: str, message: str, code: str = "invalid_request_error") -> ServiceError:
    return ServiceError(400, code, message, param, retryable=False)


def check_request(req: CreateResponseRequest, server_tools: set[str]) -> None:
    """Every field this server cannot honour is refused here, before anything is written."""
    for name in req.refused_fields():
        raise bad(name, f"'{name}' is not supported. {REFUSED_OPENAI_FIELDS[name]}", "unsupported_parameter")
    if req.store is False:
        raise bad("store", "store: false is not supported: every response is kept in its event log (remove one "
                  "with DELETE /v1/responses/{id}).", "unsupported_parameter")
    if req.service_tier not in (None, "auto", "default"):
        raise bad("service_tier", f"service_tier {req.service_tier!r} is not available: this server has one "
                  "tier ('default').", "unsupported_parameter")
    if req.top_logprobs:
        raise bad("top_logprobs", "Log probabilities are not collected from the upstream model.", "unsupported_parameter")
    if req.text is not None and req.text.verbosity is not None:
        raise bad("text.verbosity", "text.verbosity is not supported by the chat-completion models this server "
                  "drives.", "unsupported_parameter")
    if req.reasoning is not None and (req.reasoning.summary or req.reasoning.generate_summary) not in (None, "auto"):
        raise bad("reasoning.summary", "Reasoning summaries are not generated: when the model streams its "
                  "reasoning it is returned as-is (summary 'auto').", "unsupported_parameter")
    for i, value in enumerate(req.include or ()):
        if value in REFUSED_INCLUDES:
            raise bad(f"include[{i}]", f"include {value!r} is not supported: {REFUSED_INCLUDES[value]}.",
                      "unsupported_parameter")
        if value not in NO_OP_INCLUDES:
            raise bad(f"include[{i}]", f"Unknown include value {value!r}.")
    _check_tools(req, server_tools)
    _check_tool_choice(req, server_tools)
    _check_format(req)


def _check_tools(req: CreateResponseRequest, server_tools: set[str]) -> None:
    seen: set[str] = set()
    for i, tool in enumerate(req.tools or ()):
        kind = tool.get("type")
        if kind != "function":
            raise bad(f"tools[{i}].type", f"Tool type {kind!r} is not supported: the agent runs its own tools "
                      "server-side; a client may add tools of type 'function'.", "unsupported_parameter")
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise bad(f"tools[{i}].name", "A function tool needs a name of 1-64 letters, digits, '_' or '-'.")
        if name in server_tools:
            raise bad(f"tools[{i}].name", f"Tool name {name!r} is already one of the agent's own tools; rename "
                      "the client tool.")
        if name in seen:
            raise bad(f"tools[{i}].name", f"Tool name {name!r} appears twice.")
        seen.add(name)
        params = tool.get("parameters")
        if params is not None:
            if not isinstance(params, dict):
                raise bad(f"tools[{i}].parameters", "parameters must be a JSON Schema object.")
            _check_schema(params, f"tools[{i}].parameters")
        extra = set(tool) - {"type", "name", "description", "parameters", "strict"}
        if extra:
            field = sorted(extra)[0]
            raise bad(f"tools[{i}].{field}", f"Unknown function tool field {field!r}.", "unknown_parameter")


def _check_tool_choice(req: CreateResponseRequest, server_tools: set[str]) -> None:
    choice = req.tool_choice
    if choice is None or choice in ("auto", "none", "required"):
        return
    if isinstance(choice, str):
        raise bad("tool_choice", f"tool_choice {choice!r} must be 'auto', 'none', 'required' or "
                  "{'type': 'function', 'name': ...}.")
    if choice.get("type") != "function":
        raise bad("tool_choice.type", f"tool_choice type {choice.get('type')!r} is not supported: name a "
                  "function ({'type': 'function', 'name': ...}).", "unsupported_parameter")
    name = choice.get("name")
    client = {t.get("name") for t in req.tools or ()}
    if name not in client and name not in server_tools:
        raise bad("tool_choice.name", f"tool_choice names {name!r}, which is neither a tool in 'tools' nor one "
                  "of the agent's own.")


def _check_format(req: CreateResponseRequest) -> None:
    fmt = req.text.format if req.text is not None else None
    if fmt is None or fmt.type != "json_schema":
        return
    if not fmt.name:
        raise bad("text.format.name", "A json_schema format needs a name.")
    if fmt.schema_ is None:
        raise bad("text.format.schema", "A json_schema format needs a schema.")
    _check_schema(fmt.schema_, "text.format.schema")
    if fmt.schema_.get("type") != "object":
        raise bad("text.format.schema", "The schema's root must be of type 'object'.")


def _check_schema(schema: dict[str, Any], param: str) -> None:
    import jsonschema  # ~0.1 CPU-s to import: only for requests that carry a schema

    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise bad(param, f"Invalid JSON Schema{' at ' + where if where else ''}: {exc.message[:300]}") from None


def check_input(req: CreateResponseRequest, pending: dict[str, str], limit: int) -> None:
    """Input items: sizes, and tool results that answer exactly the open calls.

    `pending` maps the call ids the session waits on (its last response's client tool
    calls) to their tool names."""
    items = req.input if isinstance(req.input, list) else []
    open_calls = dict(pending)
    answered: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, FunctionCallInput):
            open_calls[item.call_id] = item.name
        elif isinstance(item, FunctionCallOutputInput):
            if item.call_id not in open_calls:
                raise bad(f"input[{i}].call_id", f"No tool call found for function call output with call_id "
                          f"{item.call_id!r}.")
            if item.call_id in answered:
                raise bad(f"input[{i}].call_id", f"The call {item.call_id!r} already has an output.")
            answered.add(item.call_id)
            if len(content_text(item.output)) > limit:
                raise bad(f"input[{i}].output", f"'input[{i}].output' is longer than {limit:,} characters.",
                          "string_above_max_length")
        elif hasattr(item, "content") and len(content_text(item.content)) > limit:
            raise bad(f"input[{i}].content", f"'input[{i}].content' is longer than {limit:,} characters.",
                      "string_above_max_length")
    missing = [c for c in open_calls if c not in answered]
    if missing:
        raise bad("input", f"No tool output found for function call {missing[0]}.")


def chat_tools(req: CreateResponseRequest) -> list[dict[str, Any]]:
    out = []
    for tool in req.tools or ():
        fn: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object",
                                                                                            "properties": {}}}
        if tool.get("description"):
            fn["description"] = tool["description"]
        if tool.get("strict") is not None:
            fn["strict"] = tool["strict"]
        out.append({"type": "function", "function": fn})
    return out


def chat_response_format(fmt: dict[str, Any] | None) -> dict[str, Any] | None:
    if fmt is None:
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    spec = {"name": fmt["name"], "schema": fmt["schema"]}
    for key in ("strict", "description"):
        if fmt.get(key) is not None:
            spec[key] = fmt[key]
    return {"type": "json_schema", "json_schema": spec}


def stored_request(req: CreateResponseRequest, **extra: Any) -> StoredRequest:
    """The turn's stored request: input, instructions, metadata and the loop's settings."""
    return StoredRequest(**req.stored(), **turn_settings(req), **extra)


def turn_settings(req: CreateResponseRequest) -> dict[str, Any]:
    """The loop's settings (`StoredRequest.options` reads them back)."""
    choice = req.tool_choice
    if isinstance(choice, dict):
        choice = {"type": "function", "function": {"name": choice["name"]}}
    model_options = {
        "temperature": req.temperature, "top_p": req.top_p, "max_tokens": req.max_output_tokens,
        "reasoning_effort": req.reasoning.effort if req.reasoning is not None else None,
        "response_format": chat_response_format(req.output_format),
        "parallel_tool_calls": req.parallel_tool_calls, "prompt_cache_key": req.prompt_cache_key,
        "user": req.safety_identifier or req.user,
    }
    out: dict[str, Any] = {
        "client_tools": chat_tools(req),
        "model_options": {k: v for k, v in model_options.items() if v is not None},
        "tool_choice": choice,
        "output_format": req.output_format,
        "max_tool_calls": req.max_tool_calls,
        "truncation": req.truncation or "auto",
    }
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def echo(req: CreateResponseRequest) -> dict[str, Any]:
    """The request's settings as the response object reports them."""
    out: dict[str, Any] = {
        "tools": [dict(t) for t in req.tools or ()],
        "tool_choice": req.tool_choice or "auto",
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "text": {"format": req.text.format.model_dump(by_alias=True, exclude_none=True)}
        if req.text is not None and req.text.format is not None else {"format": {"type": "text"}},
        "temperature": req.temperature, "top_p": req.top_p, "max_output_tokens": req.max_output_tokens,
        "reasoning": req.reasoning.model_dump(exclude_none=True) if req.reasoning is not None else None,
        "truncation": req.truncation or "auto", "max_tool_calls": req.max_tool_calls,
        "prompt_cache_key": req.prompt_cache_key, "safety_identifier": req.safety_identifier, "user": req.user,
    }
    return out
