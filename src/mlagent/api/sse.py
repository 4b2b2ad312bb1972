"""Server-sent events framing for event-log streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import StreamingResponse

from ..events.types import StoredEvent
from ..observability import metrics

KEEPALIVE = b": keep-alive\n\n"
# For the OpenAPI document: a route whose 200 may be (or is) an event stream.
STREAM_CONTENT = {"text/event-stream": {"schema": {
    "type": "object", "description": "One server-sent event: `data` is the event's JSON, `id` its sequence number",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}, "id": {"type": "string"}},
    "required": ["data"]}}}
MAYBE_STREAM: dict[int | str, dict[str, Any]] = {200: {"content": STREAM_CONTENT}}


class EventStreamResponse(StreamingResponse):
    """Documents (and sends) `text/event-stream` as the route's media type."""

    media_type = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def frame(event: StoredEvent, with_id: bool) -> bytes:
    return event.sse_with_id if with_id else event.sse


def stream(batches: AsyncIterator[list[StoredEvent] | None], with_id: bool) -> StreamingResponse:
    """`with_id` adds SSE `id:` lines (EventSource clients); the OpenAI-form streams omit
    them because the SDK's parser breaks on an `id:` followed by a comment. Each batch of
    events goes out as one write of frames encoded once per event (`StoredEvent.sse`)."""

    async def body() -> AsyncIterator[bytes]:
        with metrics.sse_client():
            async for batch in batches:
                if batch is None:
                    yield KEEPALIVE
                elif len(batch) == 1:
                    yield frame(batch[0], with_id)
                else:
                    yield b"".join([e.sse_with_id for e in batch] if with_id else [e.sse for e in batch])

    return EventStreamResponse(body(), media_type="text/event-stream", headers=HEADERS)
