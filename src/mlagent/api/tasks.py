"""Seed 001's agent surface: `/api/` (root, tasks, users) and `/ninja-api/`.

Both prefixes are served by the same handlers (`surface_router` builds one router per
prefix around them); `/ninja-api/` adds the seed's `pydantic_models_available` flag.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import StreamingResponse

from ..runtime.approvals import ApprovalRequest
from ..tasks.models import TaskAccepted, TaskRequest, TaskStatus, User
from . import sse
from .deps import AnyCaller, ApiKeyCaller, Svc, event_cursor
from .limits import MAX_INT32
from .openapi import AGENT_RUNTIME_ERRORS

API_VERSION = "1.0.0"


async def submit_task(caller: AnyCaller, svc: Svc, body: TaskRequest = Body()) -> TaskAccepted:
    """X-API-Key, or `Authorization: Bearer hf_…`: the task then runs as that Hub user, on
    their token (LLM and tools) and budget."""
    return await svc.tasks.submit(caller, body)


async def task_status(task_id: str, caller: AnyCaller, svc: Svc) -> TaskStatus:
    return await svc.tasks.status(caller, task_id)


async def task_events(task_id: str, caller: AnyCaller, svc: Svc,
                      starting_after: Annotated[int | None, Query(ge=-1, le=MAX_INT32)] = None,
                      last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """The task's events as SSE, exactly as `GET /v1/responses/{id}/events` (replay, then live)."""
    events = await svc.tasks.events(caller, task_id, event_cursor(starting_after, last_event_id))
    return sse.stream(events, with_id=True)


async def task_approval(task_id: str, caller: AnyCaller, svc: Svc,
                        body: ApprovalRequest = Body()) -> TaskStatus:
    """Answer a task paused on `approval_required` (the /v1 approvals body); it continues."""
    return await svc.tasks.approve(caller, task_id, body)


async def list_users(caller: ApiKeyCaller, svc: Svc) -> list[User]:
    return await svc.tasks.users(caller)


def surface_router(prefix: str, root_extra: dict[str, Any] | None = None) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[prefix.strip("/")], responses=AGENT_RUNTIME_ERRORS)
    root_body = {"status": "online", "version": API_VERSION, "message": "Agent Runtime API is running",
                 **(root_extra or {})}

    async def root(caller: ApiKeyCaller) -> dict[str, Any]:
        return root_body

    router.add_api_route("/", root, methods=["GET"])
    for path in ("/tasks/", "/tasks"):
        router.add_api_route(path, submit_task, methods=["POST"], response_model=TaskAccepted,
                             include_in_schema=path.endswith("/"))
    for path in ("/tasks/{task_id}", "/tasks/{task_id}/"):
        router.add_api_route(path, task_status, methods=["GET"], response_model=TaskStatus,
                             include_in_schema=not path.endswith("/"))
    for path in ("/tasks/{task_id}/events", "/tasks/{task_id}/events/"):
        router.add_api_route(path, task_events, methods=["GET"], response_class=StreamingResponse,
                             include_in_schema=not path.endswith("/"))
    for path in ("/tasks/{task_id}/approvals", "/tasks/{task_id}/approvals/"):
        router.add_api_route(path, task_approval, methods=["POST"], response_model=TaskStatus,
                             include_in_schema=not path.endswith("/"))
    for path in ("/users/", "/users"):
        router.add_api_route(path, list_users, methods=["GET"], response_model=list[User],
                             include_in_schema=path.endswith("/"))
    return router


api_router = surface_router("/api")
ninja_router = surface_router("/ninja-api", {"pydantic_models_available": True})
