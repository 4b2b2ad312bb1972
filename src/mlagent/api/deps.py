"""Request dependencies: the services container and the caller's identity."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.types import Scope

from ..auth.identity import AuthError, Identity
from ..errors import ServiceError
from ..observability.context import bind_caller, surface_of
from ..services import Services
from .limits import MAX_INT32


def services(request: Request) -> Services:
    return request.app.state.services


async def services_async(request: Request) -> Services:
    """`services` as an async dependency: FastAPI runs sync ones in a thread pool (a hop per call)."""
    return request.app.state.services


async def hf_identity(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Identity:
    """/v1 callers: `Authorization: Bearer <Hugging Face user token>`."""
    if not authorization or not authorization.lower().startswith("bearer ") or not authorization[7:].strip():
        raise AuthError("Missing bearer token: send 'Authorization: Bearer <Hugging Face token>'.", 401,
                        "missing_api_key")
    return _bound(request, await services(request).hf_tokens.validate(authorization[7:].strip()))


async def api_key_identity(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> Identity:
    """/api, /ml-api, /ninja-api callers: `X-API-Key`."""
    return _bound(request, services(request).api_keys.resolve(x_api_key))


def _bound(request: Request, identity: Identity) -> Identity:
    """The account (never the token) and surface go into the request's log lines and its turns."""
    bind_caller(identity.account, surface_of(request.scope["path"]))
    return identity


async def any_identity(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Identity:
    """Surfaces open to both kinds of caller: `X-API-Key`, else a Hugging Face bearer token."""
    if x_api_key:
        return _bound(request, services(request).api_keys.resolve(x_api_key))
    if authorization:
        return await hf_identity(request, authorization)
    raise AuthError("Missing credentials: send X-API-Key or 'Authorization: Bearer <Hugging Face token>'.", 401,
                    "missing_api_key")


def known_caller(services: Any, scope: Scope) -> Identity | None:
    """The caller as `any_identity` resolves it (X-API-Key first, else the bearer token),
    from what is already known; None when that would take a call to the Hub or fail."""
    api_key = bearer = None
    for name, value in scope["headers"]:
        if name == b"x-api-key" and api_key is None:  # the first one, as the route reads it
            api_key = value.decode("latin-1")
        elif name == b"authorization" and bearer is None:
            bearer = value.decode("latin-1")
    if api_key:
        return services.api_keys.resolve_or_none(api_key)
    if bearer and bearer[:7].lower() == "bearer " and bearer[7:].strip():
        return services.hf_tokens.cached(bearer[7:].strip())
    return None


def event_cursor(starting_after: int | None, last_event_id: str | None) -> int:
    """Where an event stream resumes: `starting_after`, else the `Last-Event-ID` header, else the start."""
    if starting_after is not None:
        return starting_after
    if last_event_id:
        try:
            after = int(last_event_id)
            if not -1 <= after <= MAX_INT32:  # the stored sequence is a 32-bit integer
                raise ValueError
            return after
        except ValueError:
            raise ServiceError(400, "invalid_request_error", "Last-Event-ID must be an event sequence number.",
                               "Last-Event-ID", retryable=False) from None
    return -1


HfCaller = Annotated[Identity, Depends(hf_identity)]
AnyCaller = Annotated[Identity, Depends(any_identity)]
ApiKeyCaller = Annotated[Identity, Depends(api_key_identity)]
Svc = Annotated[Services, Depends(services)]
FastSvc = Annotated[Services, Depends(services_async)]
