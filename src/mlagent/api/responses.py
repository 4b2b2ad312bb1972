"""`/v1/responses`: create (background, stream, synchronous), retrieve, events, cancel,
delete, input items and input-token counts; `/v1/models`."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse, Response

from ..errors import ServiceError
from ..runtime import listing
from ..runtime.listing import ResponseList
from ..runtime.requests import CreateResponseRequest, InputTokensRequest
from ..runtime.surface import Includable
from . import sse
from .deps import AnyCaller, FastSvc, HfCaller
from .limits import MAX_INT32
from .openapi import V1_ERRORS

# Reading a response (and its events) also takes an X-API-Key: a task's caller and the
# operator, who follows the turns it injects (an operator key reads every account's).
ReaderCaller = AnyCaller

router = APIRouter(prefix="/v1", tags=["responses"], responses=V1_ERRORS)


def _json(obj) -> Response:
    return Response(obj.model_dump_json(), media_type="application/json")


@router.post("/responses", responses=sse.MAYBE_STREAM)
async def create_response(
    caller: HfCaller,
    svc: FastSvc,
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


@router.get("/responses", response_model=ResponseList)
async def list_responses(
    caller: HfCaller,
    svc: FastSvc,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")] = 20,
    after: Annotated[str | None, Query(max_length=64, description="A response id from the previous page's "
                                                                  "`last_id`: list what is older than it.")] = None,
) -> Response:
    """The caller's responses, newest first (mlagent's extension: OpenAI has no listing)."""
    return _json(await listing.list_responses(svc.responses.turns, caller, limit, after))


@router.post("/responses/input_tokens")
async def count_input_tokens(caller: HfCaller, svc: FastSvc, body: Annotated[InputTokensRequest, Body()]) -> JSONResponse:
    """OpenAI's input-token count: an estimate, since the upstream models' tokenizers vary."""
    tokens = await svc.responses.count_input_tokens(caller, body)
    return JSONResponse({"object": "response.input_tokens", "input_tokens": tokens})


@router.get("/responses/{response_id}", responses=sse.MAYBE_STREAM)
async def retrieve_response(
    response_id: str,
    caller: ReaderCaller,
    svc: FastSvc,
    stream: bool = False,
    starting_after: Annotated[int | None, Query(ge=-1, le=MAX_INT32)] = None,
) -> Response:
    if stream:
        await svc.responses.check_owner(caller, response_id)
        after = -1 if starting_after is None else starting_after
        return sse.stream(svc.responses.events(response_id, after), with_id=False)
    return Response(await svc.responses.get_json(caller, response_id), media_type="application/json")


@router.get("/responses/{response_id}/events", response_class=sse.EventStreamResponse, responses=sse.MAYBE_STREAM)
async def response_events(
    response_id: str,
    caller: ReaderCaller,
    svc: FastSvc,
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
async def cancel_response(response_id: str, caller: HfCaller, svc: FastSvc) -> Response:
    return _json(await svc.responses.cancel(caller, response_id))


@router.delete("/responses/{response_id}")
async def delete_response(response_id: str, caller: HfCaller, svc: FastSvc) -> JSONResponse:
    return JSONResponse(await svc.responses.delete(caller, response_id))


@router.get("/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    caller: HfCaller,
    svc: FastSvc,
    after: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    include: Annotated[list[Includable] | None, Query(alias="include[]")] = None,
) -> JSONResponse:
    return JSONResponse(await svc.responses.input_items(caller, response_id, after, limit, order))


_STARTED = int(time.time())


def _model(model_id: str) -> dict:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": "mlagent"}


@router.get("/models")
async def list_models(caller: HfCaller, svc: FastSvc) -> JSONResponse:
    """The models `model` accepts: the same list as GET /api/config/model."""
    return JSONResponse({"object": "list", "data": [_model(m) for m in svc.settings.model_ids]})


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, caller: HfCaller, svc: FastSvc) -> JSONResponse:
    if model_id not in svc.settings.model_ids:
        raise ServiceError(404, "model_not_found", f"No model {model_id!r}; see GET /v1/models.", "model",
                           retryable=False)
    return JSONResponse(_model(model_id))
