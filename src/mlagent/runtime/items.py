"""A turn's input as OpenAI's input items (`GET /v1/responses/{id}/input_items`), paged
the way OpenAI pages them (`after`, `limit`, `order`; `first_id`, `last_id`, `has_more`)."""

from __future__ import annotations

from typing import Any, Literal

from ..errors import ServiceError

PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "mcp_call": "mcp", "reasoning": "rs"}


def input_items(turn_id: str, stored_input: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored input, each item with an id (the client's own when it sent one, else one
    derived from the response id and the position, so cursors stay stable)."""
    raw = [{"role": "user", "content": stored_input}] if isinstance(stored_input, str) else stored_input
    suffix = turn_id.removeprefix("resp_")
    out = []
    for i, item in enumerate(raw):
        kind = item.get("type") or "message"
        item_id = item.get("id") or f"{PREFIX.get(kind, 'item')}_{suffix}{i:04d}"
        out.append(_render(kind, item_id, item))
    return out


def _render(kind: str, item_id: str, item: dict[str, Any]) -> dict[str, Any]:
    if kind == "message":
        role = item.get("role", "user")
        content = item.get("content")
        part_type = "output_text" if role == "assistant" else "input_text"
        if isinstance(content, str):
            parts: list[dict[str, Any]] = [{"type": part_type, "text": content}]
        else:
            parts = [dict(p) for p in content or ()]
        if role == "assistant":
            for p in parts:
                p.setdefault("annotations", [])
        return {"type": "message", "id": item_id, "role": role, "content": parts, "status": "completed"}
    if kind == "function_call":
        return {"type": kind, "id": item_id, "call_id": item["call_id"], "name": item["name"],
                "arguments": item.get("arguments", ""), "status": "completed"}
    if kind == "function_call_output":
        return {"type": kind, "id": item_id, "call_id": item["call_id"], "output": item.get("output", ""),
                "status": "completed"}
    if kind == "mcp_call":
        return {"type": kind, "id": item_id, "server_label": item.get("server_label") or "mlagent",
                "name": item["name"], "arguments": item.get("arguments", ""), "output": item.get("output"),
                "status": "completed"}
    return {"type": "reasoning", "id": item_id, "summary": []}


def page(items: list[dict[str, Any]], after: str | None, limit: int,
         order: Literal["asc", "desc"]) -> dict[str, Any]:
    ordered = list(reversed(items)) if order == "desc" else list(items)
    start = 0
    if after is not None:
        ids = [i["id"] for i in ordered]
        if after not in ids:
            raise ServiceError(400, "invalid_request_error", f"No input item with id {after!r} in this response.",
                               "after", retryable=False)
        start = ids.index(after) + 1
    data = ordered[start:start + limit]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": start + limit < len(ordered)}
