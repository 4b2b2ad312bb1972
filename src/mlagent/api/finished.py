"""`GET /v1/responses/{id}` of a finished response kept in memory (runtime/finished.py),
answered before FastAPI's routing and dependency solving: they were most of such a
request's CPU (docs/performance.md). A pure ASGI middleware, innermost of ours, so the
request id and CORS headers are added as for any answer.

It answers only what the route would answer 200 with the very same bytes: a plain GET
(no query string) of a kept response, by its owner or the operator, whose credentials are
already known (an API key, or a Hugging Face token validated within the cache's TTL). Any
other request — not kept, another account's, unknown or missing credentials, `?stream` —
goes on to the route, which answers it as before (401, 404, SSE...).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from ..observability.context import bind_caller
from .deps import known_caller

PREFIX = "/v1/responses/"


class FinishedResponsesShortcut:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path.startswith(PREFIX) and scope["method"] == "GET" and not scope["query_string"]:
            response_id = path[len(PREFIX):]
            services = getattr(scope["app"].state, "services", None)
            finished = services.responses.finished if services is not None else None
            kept = finished.get(response_id) if finished is not None and "/" not in response_id else None
            if kept is not None:
                caller = known_caller(services, scope)
                if caller is not None and (caller.account == kept[0] or caller.is_operator):
                    bind_caller(caller.account, "v1")
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-length", str(len(kept[1])).encode()),
                                            (b"content-type", b"application/json")]})
                    await send({"type": "http.response.body", "body": kept[1]})
                    return
        await self.app(scope, receive, send)
