"""Who and where a log line or a metric comes from, carried in contextvars.

The request id is asgi-correlation-id's (taken from, or returned as, `X-Request-ID`).
The account and surface are set when a caller is authenticated. A turn's task is created
inside the request that queued it, so it inherits all three: its log lines carry the id
of the request that started it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from uuid import uuid4

from asgi_correlation_id.context import correlation_id

account: ContextVar[str | None] = ContextVar("mlagent_account", default=None)
surface: ContextVar[str | None] = ContextVar("mlagent_surface", default=None)

_PREFIXES = (("/v1/", "v1"), ("/api/v1/", "operator"), ("/api/", "api"), ("/ninja-api/", "ninja"),
             ("/ml-api/", "ml-api"), ("/deployment/", "deployment"))
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def surface_of(path: str) -> str:
    for prefix, name in _PREFIXES:
        if path.startswith(prefix):
            return name
    return "other"


def bind_caller(who: str, where: str) -> None:
    """Record the authenticated account (never its token) and the surface it came through."""
    account.set(who)
    surface.set(where)


def bind_request_id(given: str | None) -> str:
    """For calls that do not pass through the HTTP middleware (gRPC): keep a plain
    `x-request-id`, else make one."""
    value = given if given and valid_request_id(given) else uuid4().hex
    correlation_id.set(value)
    return value


def request_id() -> str | None:
    return correlation_id.get()


def valid_request_id(value: str) -> bool:
    """An incoming X-Request-ID is kept when it is short and plain (it goes into every log line)."""
    return _REQUEST_ID.fullmatch(value) is not None
