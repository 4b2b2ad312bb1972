"""`TasksService`: seed 001's tasks and users over the runtime.

A task is a turn of the same agent on the same event log as `/v1/responses`; its id is
the response id, so a task can be read as a response too. A caller with a Hugging Face
token (`Authorization: Bearer hf_…`) runs the task as that user, on their token and
budget. X-API-Key accounts carry no Hugging Face token: their turns run on the server's own LLM
credential (`MLAGENT_INFERENCE_API_KEY`; the stored request's `credential="server"`), so they
continue on it after an approval or a restart. A task paused on `approval_required` is
answered here (`approve`).
"""

from __future__ import annotations

import json
from typing import Any

from ..auth.identity import Identity
from ..config import Settings
from ..errors import ServiceError, not_found
from ..events.response import ResponseObject
from ..runtime.approvals import ApprovalRequest, ApprovalsService
from ..runtime.requests import CreateResponseRequest
from ..runtime.service import ResponsesService
from ..store.protocols import Accounts
from .models import TaskAccepted, TaskRequest, TaskStatus, User
from .tools import ToolCatalogue

TASK_METADATA = {"surface": "task"}


def render_context(context: dict[str, Any]) -> str:
    """The task's context as text the agent reads before the prompt."""
    lines = []
    for key, value in context.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"- {key}: {text}")
    return "Context for this task:\n" + "\n".join(lines)


class TasksService:
    def __init__(self, settings: Settings, responses: ResponsesService, accounts: Accounts,
                 catalogue: ToolCatalogue, approvals: ApprovalsService) -> None:
        self.settings = settings
        self.approvals = approvals
        self.responses = responses
        self.accounts = accounts
        self.catalogue = catalogue

    def _check_llm_credential(self, identity: Identity) -> None:
        if identity.token is None and not self.settings.inference_api_key:
            raise ServiceError(
                503, "inference_unavailable",
                "This server has no LLM credential for API-key callers: the operator must set "
                "MLAGENT_INFERENCE_API_KEY.", retryable=False,
            )

    async def submit(self, identity: Identity, task: TaskRequest) -> TaskAccepted:
        allowed = self.catalogue.resolve(task.tools)
        self._check_llm_credential(identity)
        input_: Any = task.prompt
        if task.context:
            input_ = [{"role": "user", "content": render_context(task.context)},
                      {"role": "user", "content": task.prompt}]
        turn = CreateResponseRequest(input=input_, background=True, metadata=TASK_METADATA)
        created = await self.responses.create(identity, turn, allowed_tools=allowed,
                                              credential="server" if identity.token is None else "caller")
        return TaskAccepted(task_id=created.id)

    async def status(self, identity: Identity, task_id: str) -> TaskStatus:
        try:
            response = await self.responses.get(identity, task_id)
        except ServiceError as exc:
            if exc.status == 404:
                raise not_found("task", task_id, "task_id") from None
            raise
        return task_status(response)

    async def events(self, identity: Identity, task_id: str, after: int):
        """The task's event stream (the /v1 SSE events), from after `after`."""
        try:
            await self.responses.check_owner(identity, task_id)
        except ServiceError as exc:
            if exc.status == 404:
                raise not_found("task", task_id, "task_id") from None
            raise
        return self.responses.events(task_id, after)

    async def approve(self, identity: Identity, task_id: str, req: ApprovalRequest) -> TaskStatus:
        """Answer the task's pending batch; the same task continues on the LLM credential it
        was created with (its stored request says whose)."""
        self._check_llm_credential(identity)
        try:
            response = await self.approvals.submit(identity, task_id, req)
        except ServiceError as exc:
            if exc.status == 404:
                raise not_found("task", task_id, "task_id") from None
            raise
        return task_status(response)

    async def users(self, identity: Identity) -> list[User]:
        accounts = sorted(await self.accounts.list(), key=lambda a: (a.created_at, a.name))
        users = [
            User(id=i, username=a.name, kind=a.kind, created_at=int(a.created_at), last_seen_at=int(a.last_seen_at))
            for i, a in enumerate(accounts, start=1)
        ]
        if identity.is_operator:
            return users
        return [u for u in users if u.username == identity.account]


def task_status(response: ResponseObject) -> TaskStatus:
    error = response.error.message if response.error else None
    if response.incomplete_details is not None and error is None:
        error = f"incomplete: {response.incomplete_details.reason}"
    return TaskStatus(task_id=response.id, status=response.status, result=response.output_text,
                      error=error, created_at=response.created_at, pending_approval=response.pending_approval)

