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
    """History + this turn: instructions prefixed, context messages, then the task.
    `system_prompt` (the agent's, from the organism) replaces the history's first one."""
    messages = repair(history) if history else [{"role": "system", "content": system_prompt or SYSTEM_PROMPT}]
    if system_prompt and messages[0].get("role") == "system":
        messages[0] = {"role": "system", "content": system_prompt}
    if instructions:
        messages.append({"role": "system", "content": instructions})
    if isinstance(input_, str):
        messages.append({"role": "user", "content": input_})
        return messages
    for i, msg in enumerate(input_):
        role = ROLE_MAP.get(msg.get("role", "user"), "user")
        if i == len(input_) - 1:
            role = "user" if role == "system" else role
        messages.append({"role": role, "content": content_text(msg.get("content"))})
    return messages


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
