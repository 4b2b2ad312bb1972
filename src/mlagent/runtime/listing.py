"""`GET /v1/responses`: the caller's responses, newest first, paged by a response-id cursor.

The OpenAI API has no such listing; its list endpoints' shape (`object: "list"`, `data`,
`first_id`, `last_id`, `has_more`) is kept so clients page it the way they page others."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ..agent.history import content_text
from ..auth.identity import Identity
from ..errors import ServiceError
from ..events.response import ResponseObject
from ..store.protocols import Turns
from ..store.records import TurnRecord

PREVIEW_CHARS = 200


class ListedResponse(ResponseObject):
    """The stored response object plus two listing-only fields: when the turn last changed
    (so a client can show a duration) and the start of the task it was given."""

    updated_at: float
    input_preview: str = ""


class ResponseList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ListedResponse] = Field(default_factory=list)
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


def input_preview(request: dict[str, Any]) -> str:
    """The last user message of the stored request, cut to PREVIEW_CHARS."""
    value = request.get("input", "")
    if isinstance(value, list):
        users = [m for m in value if isinstance(m, dict) and m.get("role", "user") == "user"] or value
        value = content_text(users[-1].get("content", "")) if users and isinstance(users[-1], dict) else ""
    text = " ".join(str(value).split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def listed(turn: TurnRecord) -> ListedResponse:
    return ListedResponse.model_validate({**turn.snapshot, "updated_at": round(turn.updated_at, 3),
                                          "input_preview": input_preview(turn.request or {})})


async def list_responses(turns: Turns, identity: Identity, limit: int, after: str | None) -> ResponseList:
    """One page of the caller's responses. `after` must be one of the caller's own response
    ids; anything else (unknown, another account's) is the same 400, so it reveals nothing."""
    cursor = None
    if after is not None:
        cursor = await turns.get(after)
        if cursor is None or cursor.account != identity.account:
            raise ServiceError(400, "invalid_request_error",
                               f"'after' must be the id of one of your responses; {after!r} is not.", "after",
                               retryable=False)
    rows = await turns.list_for_account(identity.account, limit + 1, cursor)
    page = [listed(t) for t in rows[:limit]]
    return ResponseList(data=page, first_id=page[0].id if page else None, last_id=page[-1].id if page else None,
                        has_more=len(rows) > limit)
