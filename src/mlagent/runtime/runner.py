"""Runs turns: claims each with a lease, drives the agent loop, records every step.

The turn's task is the unit of cancellation. Writes are shielded (see `EventWriter`),
so cancelling never leaves a gap in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial

from ..agent.budget import Paused
from ..agent.history import turn_messages
from ..agent.llm import LLMClients
from ..agent.loop import AgentLoop
from ..agent.notices import Notice
from ..agent.steps import AgentError, Checkpoint, LlmCalled, ToolReturned
from ..agent.tools.base import ToolContext, ToolSet
from ..agent.tools.delegate import DELEGATE_KEY
from ..config import Settings
from ..events.bus import EventBus
from ..events.response import (
    IncompleteDetails,
    ResponseError,
    ResponseObject,
)
from ..events.types import (
    CostUpdated,
    Event,
    ForwardedEvent,
    ResponseCompleted,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
    cancelled_event,
)
from ..observability import turns as observed
from ..organism.roster import AgentRoster
from ..store.protocols import Sessions, Turns
from ..store.records import SessionRecord, TurnRecord
from ..store.transient import retrying
from ..store.usage import UsageStore
from ..usage.meter import SessionMeter, cost_usage
from ..usage.prices import PriceTable
from .delegation import make_delegate
from .emitter import TurnEmitter, closing_events
from .ids import new_id
from .live import LiveSession, LiveSessions
from .notices import NoticeRouter
from .pauses import PendingBatch, pause_turn
from .snapshots import WorkspaceSnapshots
from .stored import StoredRequest
from .turnqueue import reopen
from .writer import EventWriter, GuardedWriter

log = logging.getLogger("mlagent.runtime")

DENIED = "denied"  # the paused model call was denied: the turn ends cancelled
CAS_ATTEMPTS = 4  # re-reads of a turn that moved while it was being ended
SAVE = "session write"  # idempotent writes (the history replaced, a field set): retried while the database is away


class TurnRunner:
    def __init__(
        self,
        settings: Settings,
        turns: Turns,
        sessions: Sessions,
        bus: EventBus,
        live: LiveSessions,
        toolset_for: Callable[[StoredRequest | None], ToolSet],
        usage: UsageStore | None = None,
        prices: PriceTable | None = None,
        agents: AgentRoster | None = None,
        workspaces: WorkspaceSnapshots | None = None,
    ) -> None:
        self.settings = settings
        self.turns = turns
        self.sessions = sessions
        self.bus = bus
        self.live = live
        self.toolset_for = toolset_for
        self.usage = usage
        self.prices = prices
        self.owner = new_id("worker")
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()
        # Turns between their claim and the guarded part of `_run`: a cancel there only
        # marks them (the guarded part checks the mark first), so no claimed turn is left
        # in progress with nobody to end it.
        self._claiming: set[str] = set()
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        # The organism's agents: pause/stop gate, per-agent prompt and tools.
        self.agents = agents
        # Workspace snapshots in a shared blob store (when one is configured).
        self.workspaces = workspaces
        # Shared HTTP clients to the LLM server (each run gets a copy with its caller's key).
        self.llm_clients = LLMClients(settings.llm_timeout_seconds, settings.llm_max_retries)

    # -- scheduling ---------------------------------------------------------------
    def start(self, turn_id: str, session_id: str, agent: str | None = None) -> None:
        """Run the turn in a task of its own; `agent`, when the caller knows whom the turn is
        addressed to, spares reading the turn and its session again to learn it."""
        self._cancelled.discard(turn_id)  # a mark left by an earlier task of this response
        live = self.live.get(session_id)
        if live is not None:
            live.running.add(turn_id)
        observed.queued(turn_id)  # the queue wait runs from here
        task = asyncio.create_task(self._admitted(turn_id, agent), name=f"turn:{turn_id}")
        self._tasks[turn_id] = task

        def _done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(turn_id) is not t:
                return  # a continuation of the same response (after an approval) took over
            self._tasks.pop(turn_id, None)
            self._cancelled.discard(turn_id)
            if live is not None:
                live.running.discard(turn_id)
                live.last_active = time.monotonic()

        task.add_done_callback(_done)

    async def finished(self, turn_id: str) -> None:
        """Wait until this process's task for `turn_id` (one that just paused) has let go."""
        task = self._tasks.get(turn_id)
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task], timeout=30)

    def held(self) -> list[str]:
        return list(self._tasks)

    def cancel_local(self, turn_id: str) -> bool:
        task = self._tasks.get(turn_id)
        if task is None:
            return False
        if turn_id in self._cancelled:
            return True  # once: a second cancel would interrupt the first one's clean-up
        self._cancelled.add(turn_id)
        if turn_id not in self._claiming:
            task.cancel()
        return True

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop: running turns are left in progress; the next start marks them server_restart."""
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        await self.llm_clients.close()

    # -- one turn -----------------------------------------------------------------
    async def _admitted(self, turn_id: str, agent: str | None = None) -> None:
        """Hold the turn while its agent is paused or the server stops, then run it. A
        failure nothing below handled (the database stayed away past every retry) ends
        the turn `failed` here, so no task dies with its turn left queued or running."""
        try:
            if self.agents is None:
                return await self._run(turn_id)
            if agent is None:
                turn = await retrying(lambda: self.turns.get(turn_id), f"read of turn {turn_id}")
                agent = await self._agent_of(turn) if turn is not None else "ml-agent"
            await self.agents.admit(agent, turn_id)
            with self.agents.turn(agent, turn_id):
                await self._run(turn_id)
        except Exception:
            log.exception("turn %s crashed outside its run; ending it failed", turn_id)
            await self._end_failed(turn_id)

    async def _end_failed(self, turn_id: str) -> None:
        """End a turn this process holds (queued or running) `failed`, from what the
        database says it is: a compare-and-set append of its open items' closing events and
        `response.failed`, retried while the database is away. Its streams see the end. If
        the database never answers, the lease lapses and the keeper ends it (server_restart)."""
        async def attempt() -> bool:
            turn = await self.turns.get(turn_id)
            if turn is None or turn.status not in ("queued", "in_progress") or turn.lease_owner != self.owner:
                return True  # ended meanwhile, or not ours
            writer = GuardedWriter(self.turns, self.bus, turn)
            for event in closing_events(writer.state):
                writer.add(event)
            writer.add(_failed(writer.state, "server_error", "The run failed on the server; submit it again."))
            return await writer.commit("failed", lease_owner=None, lease_expires_at=None)

        try:
            for _ in range(CAS_ATTEMPTS):  # False: the turn moved between the read and the append
                if await retrying(attempt, f"failing turn {turn_id}", attempts=8):
                    return
        except Exception:
            log.exception("turn %s could not be ended; its lease will lapse", turn_id)

    async def _agent_of(self, turn: TurnRecord) -> str:
        return StoredRequest.load(turn.request).agent or (await self.sessions.require(turn.session_id)).agent

    async def _run(self, turn_id: str) -> None:
        async with self._slots:
            if turn_id in self._cancelled:
                return  # ended by a cancel while it waited for a slot
            self._claiming.add(turn_id)
            try:
                claimed = await self._claim(turn_id)
                if claimed is None:
                    return  # cancelled while queued, or claimed elsewhere
                turn, session = claimed
            finally:
                self._claiming.discard(turn_id)
            writer = reopen(self.turns, self.bus, turn)
            emitter = TurnEmitter(writer)
            try:
                if turn_id in self._cancelled:  # cancelled between its claim and here
                    raise asyncio.CancelledError
                in_progress = ResponseInProgress(response=writer.state.model_copy(update={"status": "in_progress"}))
                if self.workspaces is None:
                    writer.stage(in_progress)  # one transaction with the turn's next event (its cost)
                else:
                    await writer.emit(in_progress)
                    await self.workspaces.restore(session.id)
                try:
                    outcome = await self._drive(StoredRequest.load(turn.request), session, writer, emitter)
                finally:  # before the turn ends: a chained turn may start on another replica at once
                    if self.workspaces is not None:
                        await asyncio.shield(self.workspaces.snapshot(session.id))
                if isinstance(outcome, Paused):
                    await pause_turn(writer, self.sessions, session.id, outcome)
                elif outcome == DENIED:
                    await writer.emit(cancelled_event(writer.state))
                else:  # committed by `close` below, with the end of the lease
                    writer.stage(ResponseCompleted(response=writer.state.model_copy(update={"status": "completed"})))
            except asyncio.CancelledError:
                if turn_id not in self._cancelled:
                    await writer.close()
                    raise  # server shutdown: recovery reports it as server_restart
                await emitter.interrupt()
                await writer.emit(cancelled_event(writer.state))
            except AgentError as exc:
                await emitter.interrupt()
                await writer.emit(_failed(writer.state, exc.code, exc.message))
            except Exception:
                log.exception("turn %s crashed", turn_id)
                if writer.broken:  # its log cannot be continued from memory: end it from the database
                    await self._end_failed(turn_id)
                    return
                await emitter.interrupt()
                await writer.emit(_failed(writer.state, "server_error", "The run failed on the server."))
            finally:  # a broken writer raises here: `_admitted` ends the turn from the database
                if not writer.broken and not await writer.close(lease_owner=None, lease_expires_at=None):
                    await self.turns.release(turn_id)

    async def _claim(self, turn_id: str) -> tuple[TurnRecord, SessionRecord] | None:
        """Claim the turn with its session, retried while the database is away; a retry
        after a commit whose answer was lost finds the turn already claimed by this process."""
        tries = 0

        async def attempt() -> tuple[TurnRecord, SessionRecord] | None:
            nonlocal tries
            tries += 1
            claimed = await self.turns.claim_with_session(turn_id, self.owner, self.settings.lease_seconds)
            if claimed is None and tries > 1:
                turn = await self.turns.get(turn_id)
                if turn is not None and turn.status == "in_progress" and turn.lease_owner == self.owner:
                    return turn, await self.sessions.require(turn.session_id)
            return claimed

        return await retrying(attempt, f"claim of turn {turn_id}")

    async def _drive(
        self, request: StoredRequest, session: SessionRecord, writer: EventWriter, emitter: TurnEmitter
    ) -> Paused | str | None:
        """Run the loop to its end; a `Paused` (or `DENIED`) says how the turn stops."""
        live = self.live.get(session.id)
        llm_key = self._llm_key(request, live)
        agent = request.agent or session.agent
        profile = self.agents.profile(agent) if self.agents is not None else None
        pending = PendingBatch.load(session.pending)
        resume = None
        if pending is not None and pending.response_id == writer.turn_id and pending.decision is not None:
            resume = pending.to_resume()  # a continuation of this response after an approval
            messages = list(session.messages)
        else:
            messages = turn_messages(session.messages, request.input, request.instructions,
                                     profile.system_prompt if profile else None)
            await retrying(partial(self.sessions.save_messages, session.id, messages, writer.turn_id), SAVE)
        if session.pending is not None:
            await retrying(partial(self.sessions.update, session.id, pending=None), SAVE)
        if resume is not None and resume.batch == "inference" and not resume.approve:
            note = "The user declined to approve further model calls for this request."
            if resume.feedback:
                note += f" Their feedback: {resume.feedback}"
            await self.sessions.save_messages(session.id, [*messages, {"role": "user", "content": note}],
                                              writer.turn_id)
            return DENIED
        meter = None
        if self.usage is not None and self.prices is not None:
            spec = self.agents.get(agent) if self.agents is not None else None
            meter = SessionMeter(self.usage, self.prices, account=session.account, session_id=session.id,
                                 response_id=writer.turn_id, agent=agent,
                                 default_max_tokens=spec.token_budget if spec else self.settings.thread_token_budget)
            await writer.emit(CostUpdated(cost=cost_usage(await retrying(meter.spend, "read of the spend"))))
        else:
            writer.send()  # what is staged (the turn's `in_progress`) goes now
        llm = self.llm_clients.for_caller(self.settings.inference_base_url, llm_key)
        # On the server's LLM key there is no caller's token for the tools to act with.
        tool_token = None if request.credential == "server" or live is None else live.token
        ctx = ToolContext(account=session.account, session_id=session.id, response_id=writer.turn_id, token=tool_token)
        toolset = self.toolset_for(request)
        loop = AgentLoop(llm, toolset.only(profile.tools) if profile else toolset, self.settings.max_agent_steps,
                         gate=meter, context_tokens=self.settings.context_window_tokens)
        sink = _TurnSink(emitter, meter, writer)
        notices = NoticeRouter(sink)
        if profile is not None and profile.peers and self.agents is not None:
            # A peer's model calls are recorded (and charged) like the turn's own, and pass
            # the same budget gate (it stops, rather than pauses, when the gate says no).
            ctx.extras[DELEGATE_KEY] = make_delegate(self.agents, profile, llm, toolset, ctx, sink, session.model,
                                                     self.settings.max_agent_steps, gate=meter)
        steps = loop.run(session.model, messages, ctx, resume, request.options())
        try:
            async for step in steps:
                await _emit_spend(meter, writer)  # e.g. charges admitted before this step
                if isinstance(step, Paused):
                    return step
                if isinstance(step, Notice):
                    await notices.route(step)
                    continue
                if isinstance(step, Checkpoint):
                    await asyncio.shield(retrying(partial(self.sessions.save_messages, session.id, step.messages,
                                                          writer.turn_id), SAVE))
                elif meter is not None and isinstance(step, LlmCalled):
                    step.cost_usd = await asyncio.shield(meter.record_llm(step))
                elif (meter is not None and isinstance(step, ToolReturned)
                      and (reported := notices.take_reported()) is not None):
                    # The call's actual cost, settled before its result is reported.
                    await asyncio.shield(meter.settle(step.call_id, reported))
                await emitter.handle(step)
                await _emit_spend(meter, writer)
        finally:
            # A cancel that lands between steps still closes the loop at once, which cancels
            # a tool call in flight (and kills its sandbox processes).
            await steps.aclose()
        return None


    def _llm_key(self, request: StoredRequest, live: LiveSession | None) -> str:
        """The key that pays for the turn's model calls (`StoredRequest.credential`)."""
        if request.credential == "server":
            key = self.settings.inference_api_key
        else:
            key = live.token.get_secret_value() if live is not None and live.token is not None else None
        if not key:
            raise AgentError("session_unavailable", "The session's credentials are no longer held; submit again.")
        return key


async def _emit_spend(meter: SessionMeter | None, writer: EventWriter) -> None:
    change = meter.take_change() if meter is not None else None
    if change is not None:
        await writer.emit(CostUpdated(cost=cost_usage(change)))


class _TurnSink:
    """Where the turn's (and its peers') notices go (`NoticeSink`): a model call enters the
    call log before its event; every write is followed by the spend it changed."""

    def __init__(self, emitter: TurnEmitter, meter: SessionMeter | None, writer: EventWriter) -> None:
        self._emitter = emitter
        self._meter = meter
        self._writer = writer

    async def emit(self, event: Event | ForwardedEvent) -> None:
        await self._writer.emit(event)
        await _emit_spend(self._meter, self._writer)

    async def record_llm(self, step: LlmCalled) -> None:
        if self._meter is not None:
            step.cost_usd = await asyncio.shield(self._meter.record_llm(step))
        await self._emitter.handle(step)
        await _emit_spend(self._meter, self._writer)

    async def settle(self, call_id: str, actual_usd: float) -> None:
        if self._meter is not None:
            await asyncio.shield(self._meter.settle(call_id, actual_usd))
            await _emit_spend(self._meter, self._writer)


def _failed(state: ResponseObject, code: str, message: str) -> ResponseFailed:
    return ResponseFailed(
        response=state.model_copy(update={"status": "failed", "error": ResponseError(code=code, message=message)})
    )


async def mark_interrupted(turns: Turns, bus: EventBus, turn_id: str) -> bool:
    """End a turn whose process died: `incomplete` / `server_restart`, open items closed.

    One compare-and-set append (status and last seq as read): the record and its log change
    together or not at all, and a worker that wrote meanwhile makes this a no-op."""
    turn = await turns.get(turn_id)
    if turn is None or turn.status not in ("queued", "in_progress"):
        return False
    writer = GuardedWriter(turns, bus, turn)
    for event in closing_events(writer.state):
        writer.add(event)
    writer.add(ResponseIncomplete(response=writer.state.model_copy(
        update={"status": "incomplete", "incomplete_details": IncompleteDetails(reason="server_restart")})))
    return await writer.commit("incomplete", lease_owner=None, lease_expires_at=None)
