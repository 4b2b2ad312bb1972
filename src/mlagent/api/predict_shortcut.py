"""`POST /deployment/{id}/predict` answered before FastAPI's routing, exception middleware and
request handler, as finished.py answers a kept response: for a 1-row predict they cost more
than the prediction (docs/performance.md, "Predict"). A pure ASGI middleware, innermost of
ours (inside the body limits, which have already bounded and read the body; inside CORS and
the request id, which it gets as any answer does).

It takes a call only when its caller is already known (an API key, or a Hugging Face token
validated within the cache's TTL: deps.py's `known_caller`, the route's order); it then
runs the route's very code (`deployments.predict_payload`) and renders a ServiceError as the
route's exception handler would. Anything else (unknown or missing credentials, another
method, a trailing slash) goes on to the route, which also keeps the OpenAPI document."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..auth.identity import Identity
from ..errors import ServiceError
from ..observability.context import bind_caller, surface_of
from .deployments import predict_payload
from .deps import known_caller
from .errors import service_error_response

_PATH = re.compile(r"/deployment/([^/]+)/predict")  # the route's path, `{deployment_id}` as Starlette matches it
_JSON = [(b"content-type", b"application/json")]


class PredictShortcut:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.fullmatch(scope["path"])
            services = getattr(scope["app"].state, "services", None) if match is not None else None
            caller = known_caller(services, scope) if services is not None else None
            if match is not None and caller is not None:
                await self._predict(scope, receive, send, services, caller, match[1])
                return
        await self.app(scope, receive, send)

    async def _predict(self, scope: Scope, receive: Receive, send: Send, services, caller: Identity,
                       deployment_id: str) -> None:
        bind_caller(caller.account, surface_of(scope["path"]))
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            payload = await predict_payload(services, caller, deployment_id, b"".join(chunks))
        except ServiceError as exc:
            await service_error_response(Request(scope), exc)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode()), *_JSON]})
        await send({"type": "http.response.body", "body": payload})
