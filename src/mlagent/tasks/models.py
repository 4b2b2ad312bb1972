"""Typed requests and answers of the task surfaces (REST `/api/tasks/`, gRPC AgentService)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..events.response import PendingApproval

MAX_CONTEXT_ENTRIES = 64


class TaskRequest(BaseModel):
    """`POST /api/tasks/` and `ExecuteTaskRequest`: what to do, with what context and tools."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    tools: list[str] | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("context")
    @classmethod
    def _context_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_CONTEXT_ENTRIES:
            raise ValueError(f"at most {MAX_CONTEXT_ENTRIES} entries")
        return value


class TaskAccepted(BaseModel):
    task_id: str
    status: str = "accepted"
    message: str = "Task submitted for execution"


class TaskStatus(BaseModel):
    """The REST twin of `GetTaskStatusResponse`, plus the error when the task failed."""

    task_id: str
    status: str
    result: str
    error: str | None = None
    created_at: int
    # A task paused on `approval_required`: the pending actions with their estimates and the
    # budget (the response's `pending_approval`); null otherwise.
    pending_approval: PendingApproval | None = None


class User(BaseModel):
    id: int
    username: str
    email: str | None = None
    kind: str
    created_at: int
    last_seen_at: int
