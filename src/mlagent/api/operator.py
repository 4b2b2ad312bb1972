"""`/api/v1`: the operator API (seed 002) — organism, capabilities, agents, threads,
messages, inject, reload, stop. Any caller may read; the operator key sees every
account, others only their own threads; reload, stop, pause and resume are operator-only.
Usage routes (`/api/v1/usage…`) live in their own module."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from ..organism.models import (
    AgentInfo,
    AgentListResponse,
    AgentStateChange,
    CapabilityDetail,
    CapabilityListResponse,
    InjectRequest,
    InjectResponse,
    KillResponse,
    MessageListResponse,
    OrganismInfo,
    StopResponse,
    ThreadInfo,
    ThreadListResponse,
)
from ..organism.roster import ReloadResult
from ..runtime.operator import OperatorService
from .deps import AnyCaller, Svc
from .errors import error_response
from .limits import MAX_INT32
from .openapi import OPERATOR_ERRORS

router = APIRouter(prefix="/api/v1", tags=["operator"], responses=OPERATOR_ERRORS)
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1-100)")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT32)]
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
STOPS_WORK = ("/cancel", "/kill")  # still allowed while stopping


def _op(svc: Svc) -> OperatorService:
    return svc.operator


# -- organism ---------------------------------------------------------------------------
@router.get("/organism", response_model=OrganismInfo)
async def get_organism(caller: AnyCaller, svc: Svc) -> OrganismInfo:
    """Organism overview and live stats (counts cover the caller's own threads unless operator)."""
    return await _op(svc).organism(caller)


@router.get("/organism/config")
async def get_organism_config(caller: AnyCaller, svc: Svc) -> dict[str, Any]:
    """The organism and server configuration, sanitised: no keys, no tokens."""
    return _op(svc).organism_config(caller)


@router.post("/organism/reload", response_model=ReloadResult)
async def reload_organism(caller: AnyCaller, svc: Svc) -> ReloadResult:
    """Re-read the organism file: agents added, removed and updated; running turns unharmed.
    A broken file answers 422 with the reason and the previous configuration stays."""
    return await _op(svc).reload(caller)


@router.post("/organism/stop", response_model=StopResponse)
async def stop_organism(caller: AnyCaller, svc: Svc) -> StopResponse:
    """Graceful shutdown: no new turns, running ones finish (or end at a safe point), then exit."""
    return await _op(svc).stop(caller)


# -- capabilities -------------------------------------------------------------------------
@router.get("/capabilities", response_model=CapabilityListResponse)
async def list_capabilities(caller: AnyCaller, svc: Svc) -> CapabilityListResponse:
    capabilities = _op(svc).capabilities()
    return CapabilityListResponse(capabilities=capabilities, count=len(capabilities))


@router.get("/capabilities/{name}", response_model=CapabilityDetail)
async def get_capability(name: str, caller: AnyCaller, svc: Svc) -> CapabilityDetail:
    return _op(svc).capability(name)


# -- agents ---------------------------------------------------------------------------------
@router.get("/agents", response_model=AgentListResponse)
async def list_agents(caller: AnyCaller, svc: Svc) -> AgentListResponse:
    agents = await _op(svc).agents(caller)
    return AgentListResponse(agents=agents, count=len(agents))


@router.get("/agents/{name}", response_model=AgentInfo)
async def get_agent(name: str, caller: AnyCaller, svc: Svc) -> AgentInfo:
    return await _op(svc).agent(caller, name)


@router.get("/agents/{name}/config")
async def get_agent_config(name: str, caller: AnyCaller, svc: Svc) -> dict[str, Any]:
    """The agent's section of the organism file (sanitised), with its resolved tools and model."""
    return _op(svc).agent_config(name)


@router.get("/agents/{name}/schema")
async def get_agent_schema(name: str, caller: AnyCaller, svc: Svc) -> dict[str, Any]:
    """The agent's input schema for `POST /api/v1/inject` payloads. It is JSON Schema
    (draft 2020-12), so `contentType` is `application/schema+json` (the seed's was XML)."""
    return _op(svc).agent_schema(name)


@router.post("/agents/{name}/pause", response_model=AgentStateChange)
async def pause_agent(name: str, caller: AnyCaller, svc: Svc) -> AgentStateChange:
    """Queued and new turns for this agent wait until it is resumed; running ones go on."""
    return await _op(svc).set_paused(caller, name, True)


@router.post("/agents/{name}/resume", response_model=AgentStateChange)
async def resume_agent(name: str, caller: AnyCaller, svc: Svc) -> AgentStateChange:
    return await _op(svc).set_paused(caller, name, False)


# -- threads and messages ------------------------------------------------------------------
@router.get("/threads", response_model=ThreadListResponse)
async def list_threads(
    caller: AnyCaller, svc: Svc,
    status: Annotated[str | None, Query(description="active, idle, failed or killed")] = None,
    agent: Annotated[str | None, Query(description="Filter by participant agent")] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> ThreadListResponse:
    threads, total = await _op(svc).list_threads(caller, status, agent, limit, offset)
    return ThreadListResponse(threads=threads, count=len(threads), total=total, offset=offset, limit=limit)


@router.get("/threads/{thread_id}", response_model=ThreadInfo)
async def get_thread(thread_id: str, caller: AnyCaller, svc: Svc) -> ThreadInfo:
    return await _op(svc).thread(caller, thread_id)


@router.get("/threads/{thread_id}/messages", response_model=MessageListResponse)
async def get_thread_messages(thread_id: str, caller: AnyCaller, svc: Svc, limit: Limit = 50,
                              offset: Offset = 0) -> MessageListResponse:
    messages, total = await _op(svc).messages(caller, thread_id, None, limit, offset)
    return MessageListResponse(messages=messages, count=len(messages), total=total, offset=offset, limit=limit)


@router.post("/threads/{thread_id}/kill")
async def kill_thread(thread_id: str, caller: AnyCaller, svc: Svc) -> Response:
    """Cancel the thread's running turn and close the thread (no further turns)."""
    result: KillResponse = await _op(svc).kill(caller, thread_id)
    return JSONResponse(result.model_dump(by_alias=True))


@router.get("/messages", response_model=MessageListResponse)
async def list_messages(
    caller: AnyCaller, svc: Svc,
    agent: Annotated[str | None, Query(description="Filter by agent (sender or receiver)")] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> MessageListResponse:
    messages, total = await _op(svc).messages(caller, None, agent, limit, offset)
    return MessageListResponse(messages=messages, count=len(messages), total=total, offset=offset, limit=limit)


# -- control ----------------------------------------------------------------------------------
@router.post("/inject", response_model=InjectResponse)
async def inject_message(caller: AnyCaller, svc: Svc, body: Annotated[InjectRequest, Body()]) -> InjectResponse:
    """Deliver `payload` to agent `to` in `thread_id` (a new thread when absent); it runs a turn."""
    return await _op(svc).inject(caller, body)


class _StopGuard:
    """While the organism stops, requests that would start work answer 503. A plain ASGI
    middleware: `@app.middleware("http")` (BaseHTTPMiddleware) costs a task and a streamed
    response per request, a third of a one-row predict's time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in MUTATING:
            services = getattr(scope["app"].state, "services", None)
            operator = getattr(services, "operator", None)
            path = scope["path"]
            if (operator is not None and operator.stopping and path != "/api/v1/organism/stop"
                    and not path.endswith(STOPS_WORK)):
                response = error_response(Request(scope), 503, "server_stopping",
                                          "The server is stopping and takes no new work.")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_stop_guard(app: FastAPI) -> None:
    app.add_middleware(_StopGuard)
