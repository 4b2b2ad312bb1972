"""Building the chat history for a turn, and keeping it valid for the next one."""

from __future__ import annotations

from typing import Any

from .prompts import SYSTEM_PROMPT

ROLE_MAP = {"developer": "system", "system": "system", "user": "user", "assistant": "assistant"}


def content_text(content: Any) -> str:
    """Flatten a string or a list of OpenAI content parts to text."""
    if isinstance(content, str):
        return content
    parts = []
    for part in content or ():
        if isinstance(part, dict):
            parts.append(str(part.get("text", "")))
        else:
            parts.append(str(part))
    return "\n".join(p for p in parts if p)


def turn_messages(
    history: list[dict[str, Any]], input_: str | list[dict[str, Any]], instructions: str | None,
    system_prompt: str | None = None,
) -> list[dict[str, Any]]:
    """History + this turn: results of the client's tool calls the history waits on, the
    instructions, context messages, then the task. `system_prompt` (the agent's, from the
    organism) replaces the history's first one."""
    messages: list[dict[str, Any]] = list(history) if history else [{"role": "system", "content": system_prompt or SYSTEM_PROMPT}]
    if system_prompt and messages[0].get("role") == "system":
        messages[0] = {"role": "system", "content": system_prompt}
    if isinstance(input_, str):
        items: list[dict[str, Any]] = [{"role": "user", "content": input_}]
    else:
        items = [dict(i) for i in input_]
    # Tool results come first: they must follow the assistant message that made the calls.
    lead = 0
    while lead < len(items) and items[lead].get("type") == "function_call_output":
        lead += 1
    messages.extend(_tool_result(i) for i in items[:lead])
    messages = repair(messages)
    if instructions:
        messages.append({"role": "system", "content": instructions})
    rest = items[lead:]
    for i, item in enumerate(rest):
        kind = item.get("type") or "message"
        if kind == "message":
            role = ROLE_MAP.get(item.get("role", "user"), "user")
            if i == len(rest) - 1 and role == "system":
                role = "user"
            messages.append({"role": role, "content": content_text(item.get("content"))})
        elif kind in ("function_call", "mcp_call"):
            call_id = item.get("call_id") or item.get("id") or f"call_{len(messages)}"
            call = {"id": call_id, "type": "function",
                    "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"}}
            last = messages[-1]
            if last.get("role") == "assistant":
                last = messages[-1] = {**last, "tool_calls": [*(last.get("tool_calls") or []), call]}
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            if kind == "mcp_call":  # the agent's own tool run: its result is part of the item
                messages.append({"role": "tool", "tool_call_id": call_id, "content": item.get("output") or ""})
        elif kind == "function_call_output":
            messages.append(_tool_result(item))
        # reasoning items are not replayed: chat-completion upstreams take no reasoning input
    return messages


def _tool_result(item: dict[str, Any]) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": item["call_id"], "content": content_text(item.get("output"))}


def repair(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answer tool calls left unanswered by a cancel or a crash, so the history stays
    acceptable to chat-completion servers (every tool call needs a tool message)."""
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    out: list[dict[str, Any]] = []
    for msg in messages:
        out.append(msg)
        for call in msg.get("tool_calls") or ():
            if call["id"] not in answered:
                out.append({"role": "tool", "tool_call_id": call["id"], "content": "Interrupted before it finished."})
    return out
