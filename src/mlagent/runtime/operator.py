"""`OperatorService`: what `/api/v1` (the operator API) calls.

Threads are sessions and messages are their turns (see docs/operator-api.md). The
operator key sees every account; any other caller sees only its own threads. Injecting
runs a real turn through the same runner as `/v1/responses`; stopping drains running
turns and then asks the process to shut down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from ..agent.tools.base import ToolSet
from ..auth.identity import Identity
from ..config import Settings
from ..errors import ServiceError
from ..events.bus import EventBus
from ..events.response import ResponseObject
from ..organism import capabilities as caps, payload as payloads
from ..organism.models import (
    AgentInfo,
    AgentStateChange,
    CapabilityDetail,
    CapabilityInfo,
    InjectRequest,
    InjectResponse,
    KillResponse,
    Message,
    OrganismInfo,
    StopResponse,
    ThreadCounts,
    ThreadInfo,
    ThreadSummary,
)
from ..organism.roster import AgentRoster, ReloadResult
from ..organism.sanitise import sanitise, url_without_credentials
from ..organism.spec import AgentSpec, OrganismError
from ..store.protocols import SessionBusy, SessionClosed, Sessions, Turns
from ..store.records import SessionRecord
from ..store.threads import THREAD_STATUSES, MessageRow, ThreadRow, ThreadStore
from .live import LiveSessions
from .runner import TurnRunner, mark_interrupted
from .service import DEFAULT_MAX_COST_USD, ResponsesService
from .stored import Credential, StoredRequest
from .turnqueue import NewSession, TurnQueue

log = logging.getLogger("mlagent.operator")
SCHEMA_CONTENT_TYPE = "application/schema+json"
THREAD_HISTORY_LIMIT = 100


def _terminate_process() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown, then the lifespan's clean-up


class OperatorService:
    def __init__(self, settings: Settings, roster: AgentRoster, tools: ToolSet, threads: ThreadStore,
                 turns: Turns, sessions: Sessions, bus: EventBus, live: LiveSessions,
                 runner: TurnRunner, queue: TurnQueue, responses: ResponsesService,
                 shutdown: Callable[[], None] = _terminate_process) -> None:
        self.settings = settings
        self.roster = roster
        self.tools = tools
        self.threads = threads
        self.turns = turns
        self.sessions = sessions
        self.bus = bus
        self.live = live
        self.runner = runner
        self.queue = queue
        self.responses = responses
        self._shutdown = shutdown
        self._drain_task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        return self.roster.stopping

    # -- who may do what --------------------------------------------------------------
    @staticmethod
    def require_operator(identity: Identity, action: str) -> None:
        if not identity.is_operator:
            raise ServiceError(403, "operator_required", f"Only the operator key may {action}.", retryable=False)

    @staticmethod
    def _scope(identity: Identity) -> str | None:
        return None if identity.is_operator else identity.account

    async def _thread(self, identity: Identity, thread_id: str) -> ThreadRow:
        row = await self.threads.get(thread_id)
        if row is None or (not identity.is_operator and row.account != identity.account):
            raise ServiceError(404, "not_found", f"Thread not found: {thread_id}", "thread_id", retryable=False)
        return row

    def _agent(self, name: str) -> AgentSpec:
        agent = self.roster.get(name)
        if agent is None:
            raise ServiceError(404, "not_found", f"Agent not found: {name}", "name", retryable=False)
        return agent

    # -- organism ---------------------------------------------------------------------
    async def organism(self, identity: Identity) -> OrganismInfo:
        scope = self._scope(identity)
        counts = await self.threads.count_by_status(scope)
        _, messages = await self.threads.messages(scope, None, None, 1, 0)
        reg = self.roster
        return OrganismInfo(
            name=reg.spec.name, status="stopping" if reg.stopping else "running", config_path=self._source(identity),
            loaded_at=reg.loaded_at, reloads=reg.reloads, uptime_seconds=round(time.time() - reg.started_at, 3),
            agent_count=len(reg.agents()), agents=reg.spec.names(), paused_agents=sorted(reg.paused),
            capability_count=len(self.tools.names()), running_turns=len(reg.running()),
            waiting_turns=len(reg.waiting()), threads=ThreadCounts(**counts, total=sum(counts.values())),
            message_count=messages, scope="own" if scope else "all",
        )

    def _source(self, identity: Identity) -> str:
        """The organism file: its full path for the operator, its name for everyone else (a
        server's directory layout is not a caller's business)."""
        return self.roster.source if identity.is_operator else os.path.basename(self.roster.source)

    def organism_config(self, identity: Identity) -> dict[str, Any]:
        s = self.settings
        config = {
            "organism": self.roster.spec.model_dump(),
            "source": self._source(identity),
            "server": {
                "models": s.model_ids, "default_model": s.default_model_id,
                "inference_base_url": url_without_credentials(s.inference_base_url),
                "inference_server_key_configured": bool(s.inference_api_key),
                "database": "sqlite" if s.resolved_database_url.startswith("sqlite") else "postgresql",
                "job_backend": s.job_backend, "worker_concurrency": s.worker_concurrency,
                "max_sessions_per_account": s.max_sessions_per_account, "max_sessions_global": s.max_sessions_global,
                "max_agent_steps": s.max_agent_steps, "stop_grace_seconds": s.stop_grace_seconds,
            },
        }
        return sanitise(config, [s.operator_key, s.agent_api_key, s.inference_api_key])

    async def reload(self, identity: Identity) -> ReloadResult:
        self.require_operator(identity, "reload the organism")
        try:
            result = await self.roster.reload()
        except OrganismError as exc:
            raise ServiceError(422, "invalid_organism", f"Reload refused; the previous configuration stays: "
                               f"{exc.reason}", retryable=False) from None
        log.info("organism reloaded: +%s -%s ~%s", result.added, result.removed, result.updated)
        return result

    async def stop(self, identity: Identity) -> StopResponse:
        self.require_operator(identity, "stop the server")
        if self._drain_task is None:
            await self.roster.stop()
            self._drain_task = asyncio.create_task(self._drain(), name="operator-stop")
        return StopResponse(running_turns=len(self.roster.running()), waiting_turns=len(self.roster.waiting()),
                            grace_seconds=self.settings.stop_grace_seconds)

    async def _drain(self) -> None:
        """Let running turns finish (up to the grace period), end the rest at a safe point
        (`incomplete` / `server_restart`, history checkpointed), then shut down."""
        deadline = time.monotonic() + self.settings.stop_grace_seconds
        log.warning("stop requested: draining %d running turn(s)", len(self.roster.running()))
        while self.roster.running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        left = self.runner.held()
        await self.runner.shutdown()
        for turn_id in left:
            await mark_interrupted(self.turns, self.bus, turn_id)
        log.warning("stop: drained; %d unfinished turn(s) ended as server_restart; shutting down", len(left))
        self._shutdown()

    # -- capabilities -------------------------------------------------------------------
    def _users_of(self, tool: str) -> list[str]:
        return [a.name for a in self.roster.agents() if tool in self.roster.tools_of(a)]

    def capabilities(self) -> list[CapabilityInfo]:
        return [caps.info(t, self._users_of(t.name)) for t in sorted(self.tools, key=lambda t: t.name)]

    def capability(self, name: str) -> CapabilityDetail:
        tool = self.tools.get(name)
        if tool is None:
            raise ServiceError(404, "not_found", f"Capability not found: {name}", "name", retryable=False)
        return caps.detail(tool, self._users_of(name))

    # -- agents -------------------------------------------------------------------------
    async def agents(self, identity: Identity) -> list[AgentInfo]:
        counts = await self.threads.thread_counts(self._scope(identity), self.roster.spec.names())
        return [self._agent_info(a, counts[a.name]) for a in self.roster.agents()]

    async def agent(self, identity: Identity, name: str) -> AgentInfo:
        agent = self._agent(name)
        counts = await self.threads.thread_counts(self._scope(identity), [name])
        return self._agent_info(agent, counts[name])

    def _agent_info(self, agent: AgentSpec, threads: int) -> AgentInfo:
        reg = self.roster
        return AgentInfo(name=agent.name, description=agent.description,
                         model=agent.model or self.settings.default_model_id, tools=reg.tools_of(agent),
                         peers=agent.peers, token_budget=agent.token_budget, state=reg.state(agent.name),
                         running_turns=len(reg.running(agent.name)), waiting_turns=len(reg.waiting(agent.name)),
                         thread_count=threads)

    def agent_config(self, name: str) -> dict[str, Any]:
        agent = self._agent(name)
        section = agent.model_dump()
        section.update(is_agent=True, effective_model=agent.model or self.settings.default_model_id,
                       resolved_tools=self.roster.tools_of(agent))
        s = self.settings
        return sanitise(section, [s.operator_key, s.agent_api_key, s.inference_api_key])

    def agent_schema(self, name: str) -> dict[str, Any]:
        return {"schema": self._agent(name).input_schema, "contentType": SCHEMA_CONTENT_TYPE}

    async def set_paused(self, identity: Identity, name: str, paused: bool) -> AgentStateChange:
        self.require_operator(identity, "pause or resume agents")
        self._agent(name)
        await (self.roster.pause(name, identity.account) if paused else self.roster.resume(name))
        return AgentStateChange(agent=name, state=self.roster.state(name))

    # -- threads and messages --------------------------------------------------------------
    def _summary(self, row: ThreadRow, participants: list[str]) -> dict[str, Any]:
        agent = self.roster.get(row.agent)
        return dict(id=row.id, account=row.account, agent=row.agent, participants=participants, model=row.model,
                    status=row.status, turn_count=row.turns, token_budget=agent.token_budget if agent else None,
                    max_cost_usd=row.max_cost_usd, spent_usd=row.spent_usd, created_at=row.created_at,
                    updated_at=row.updated_at)

    async def list_threads(self, identity: Identity, status: str | None, agent: str | None, limit: int,
                           offset: int) -> tuple[list[ThreadSummary], int]:
        if status is not None and status not in THREAD_STATUSES:
            raise ServiceError(400, "invalid_status", f"Invalid status: {status}. Valid values: {list(THREAD_STATUSES)}",
                               "status", retryable=False)
        rows, total = await self.threads.list(self._scope(identity), status, agent, limit, offset)
        out = [ThreadSummary(**self._summary(r, await self.threads.participants(r.id))) for r in rows]
        return out, total

    async def thread(self, identity: Identity, thread_id: str) -> ThreadInfo:
        row = await self._thread(identity, thread_id)
        messages, total = await self.threads.messages(None, thread_id, None, THREAD_HISTORY_LIMIT, 0)
        return ThreadInfo(**self._summary(row, await self.threads.participants(thread_id)), message_count=total,
                          messages=[_message(m) for m in messages])

    async def messages(self, identity: Identity, thread_id: str | None, agent: str | None, limit: int,
                       offset: int) -> tuple[list[Message], int]:
        if thread_id is not None:
            await self._thread(identity, thread_id)
        rows, total = await self.threads.messages(self._scope(identity), thread_id, agent, limit, offset)
        return [_message(m) for m in rows], total

    async def kill(self, identity: Identity, thread_id: str) -> KillResponse:
        row = await self._thread(identity, thread_id)
        owner = Identity(account=row.account, kind="api_key")
        cancelled = []
        for turn_id in await self.threads.active_turns(thread_id):
            await self.responses.cancel(owner, turn_id)
            if turn_id in self.roster.waiting():  # held by a pause: end its waiting task too
                self.runner.cancel_local(turn_id)
            cancelled.append(turn_id)
        await self.sessions.update(thread_id, closed=True, pending=None)
        return KillResponse(thread_id=thread_id, cancelled=cancelled)

    # -- inject -----------------------------------------------------------------------------
    async def inject(self, identity: Identity, req: InjectRequest) -> InjectResponse:
        agent = self.roster.get(req.to)
        if agent is None:
            raise ServiceError(400, "unknown_agent", f"Unknown target agent: {req.to}", "to", retryable=False)
        if self.roster.stopping:
            raise ServiceError(503, "server_stopping", "The server is stopping and takes no new turns.")
        size = len(req.payload) if isinstance(req.payload, str) else len(json.dumps(req.payload, ensure_ascii=False))
        if size > self.settings.max_input_chars:
            raise ServiceError(400, "string_above_max_length", f"'payload' is longer than "
                               f"{self.settings.max_input_chars:,} characters (as JSON).", "payload", retryable=False)
        payload = payloads.normalise(req.payload)
        bad = payloads.problems(agent.input_schema, payload)
        if bad:
            field, reason = bad[0]
            raise ServiceError(400, "invalid_payload", f"'{field}' {reason} (see GET /api/v1/agents/{agent.name}/schema).",
                               field, retryable=False)
        session: SessionRecord | NewSession
        if req.thread_id:
            row = await self._thread(identity, req.thread_id)
            if row.status == "killed":
                raise _thread_closed(row.id)
            if row.status == "active":
                raise _thread_busy(row.id)
            session = await self.sessions.require(row.id)
        else:
            session = NewSession(identity.account, agent.name, agent.model or self.settings.default_model_id,
                                 DEFAULT_MAX_COST_USD)
        mine = session.account == identity.account and identity.can_use_inference
        own_token = identity.token if mine else None
        held = self.live.get(session.id) if isinstance(session, SessionRecord) else None
        credential: Credential = "caller"
        if own_token is None and (held is None or held.token is None):
            if not self.settings.inference_api_key:
                raise ServiceError(409, "no_inference_credential",
                                   "No LLM credential for this turn: the thread holds no live Hugging Face token and "
                                   "the server has no MLAGENT_INFERENCE_API_KEY. Continue the thread through "
                                   "/v1/responses with a token, or configure the server key.", retryable=False)
            credential = "server"
        request = StoredRequest(input=payloads.as_input(payload), agent=agent.name, sender=identity.account,
                                payload=payload, credential=credential)
        previous = await self.turns.latest_for_session(session.id) if isinstance(session, SessionRecord) else None
        shown = dict(background=True, previous_response_id=previous.id if previous else None,
                     metadata={"agent": agent.name, "injected_by": identity.account})
        try:
            created = await self.queue.enqueue(identity, session, request, token=own_token, shown=shown)
        except SessionBusy:
            raise _thread_busy(req.thread_id or "") from None
        except SessionClosed:
            raise _thread_closed(req.thread_id or "") from None
        return InjectResponse(thread_id=created.session_id, message_id=f"{created.id}:in", response_id=created.id,
                              status="queued")


def _thread_busy(thread_id: str) -> ServiceError:
    return ServiceError(409, "thread_busy", f"Thread {thread_id} is still running a turn; wait for it.", "thread_id",
                        retryable=False)


def _thread_closed(thread_id: str) -> ServiceError:
    return ServiceError(409, "thread_closed", f"Thread {thread_id} was killed; start a new one.", "thread_id",
                        retryable=False)


def _message(m: MessageRow) -> Message:
    request = StoredRequest.load(m.request)
    sender = request.sender or m.account
    if not m.outbound:
        body = request.payload or {"input": request.input,
                                   **({"instructions": request.instructions} if request.instructions else {})}
        return Message(id=f"{m.turn_id}:in", thread_id=m.thread_id, response_id=m.turn_id, direction="inbound",
                       from_id=sender, to_id=m.agent, agent=m.agent, status=m.status, payload=body, created_at=m.at)
    response = ResponseObject.model_validate(m.snapshot)
    body = {"text": response.output_text}
    if response.error is not None:
        body["error"] = response.error.model_dump()
    if response.incomplete_details is not None:
        body["incomplete_details"] = response.incomplete_details.model_dump()
    return Message(id=f"{m.turn_id}:out", thread_id=m.thread_id, response_id=m.turn_id, direction="outbound",
                   from_id=m.agent, to_id=sender, agent=m.agent, status=m.status, payload=body, created_at=m.at)
