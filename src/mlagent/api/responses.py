"""`/v1/responses`: create (background, stream, synchronous), retrieve, events, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse, Response

from ..errors import ServiceError
from ..runtime.requests import CreateResponseRequest
from . import sse
from .deps import HfCaller, Svc
from .limits import MAX_INT32
from .openapi import V1_ERRORS

router = APIRouter(prefix="/v1", tags=["responses"], responses=V1_ERRORS)


def _json(obj) -> Response:
    return Response(obj.model_dump_json(), media_type="application/json")


@router.post("/responses", responses=sse.MAYBE_STREAM)
async def create_response(
    caller: HfCaller,
    svc: Svc,
    body: Annotated[CreateResponseRequest, Body()],
    idempotency_key: Annotated[str | None, Header(max_length=300)] = None,
) -> Response:
    runtime = svc.responses
    created = await runtime.create(caller, body, idempotency_key)
    if body.stream:
        return sse.stream(runtime.events(created.id), with_id=False)
    if body.background:
        return _json(created)
    return _json(await runtime.wait(created.id, body.wait_timeout_seconds))


@router.get("/responses/{response_id}", responses=sse.MAYBE_STREAM)
async def retrieve_response(
    response_id: str,
    caller: HfCaller,
    svc: Svc,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1, le=MAX_INT32)] = None,
) -> Response:
    if stream:
        await svc.responses.check_owner(caller, response_id)
        after = -1 if starting_after is None else starting_after
        return sse.stream(svc.responses.events(response_id, after), with_id=False)
    return _json(await svc.responses.get(caller, response_id))


@router.get("/responses/{response_id}/events", response_class=sse.EventStreamResponse, responses=sse.MAYBE_STREAM)
async def response_events(
    response_id: str,
    caller: HfCaller,
    svc: Svc,
    starting_after: Annotated[int | None, Query(ge=-1, le=MAX_INT32)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    await svc.responses.check_owner(caller, response_id)
    after = -1
    if starting_after is not None:
        after = starting_after
    elif last_event_id:
        try:
            after = int(last_event_id)
            if not -1 <= after <= MAX_INT32:
                raise ValueError
        except ValueError:
            raise ServiceError(400, "invalid_request_error", "Last-Event-ID must be an event sequence number.",
                               "Last-Event-ID", retryable=False) from None
    return sse.stream(svc.responses.events(response_id, after), with_id=True)


@router.post("/responses/{response_id}/cancel")
async def cancel_response(response_id: str, caller: HfCaller, svc: Svc) -> Response:
    return _json(await svc.responses.cancel(caller, response_id))
