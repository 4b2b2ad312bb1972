"""`ResponsesService`: what the /v1 surface (and the task surfaces) call.

It validates what depends on configuration, enforces ownership and limits, persists new
turns with their first events, and reads responses and event streams from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from ..agent.history import content_text, turn_messages
from ..agent.loop import estimate_tokens
from ..auth.identity import Identity, describe
from ..config import Settings
from ..errors import ServiceError, not_found
from ..events.bus import EventBus
from ..events.response import TERMINAL_STATUSES, ResponseObject
from ..events.types import (
    PAUSE_EVENT_TYPES,
    TERMINAL_EVENT_TYPES,
    Event,
    ResponseCreated,
    ResponseQueued,
    StoredEvent,
    cancelled_event,
)
from ..store.sessions import AccountStore, SessionStore
from ..store.tables import Session, Turn
from ..store.turns import DuplicateIdempotencyKey, SessionBusy, SessionClosed, TurnStore, paused_on_approval
from .ids import new_id
from .items import input_items, page
from .live import LimitReached, LiveSessions
from .requests import CreateResponseRequest, InputMessage
from .runner import TurnRunner
from .surface import chat_tools, check_input, check_request, echo, turn_settings
from .writer import GuardedWriter

DEFAULT_MAX_COST_USD = 5.0
PAUSED = "incomplete"
# A cancel re-reads the turn when it moved meanwhile (queued -> running -> paused).
CANCEL_ATTEMPTS = 4
# How long a cancel of a running turn waits for its worker to end it before answering.
CANCEL_WAIT_SECONDS = 5.0


class ResponsesService:
    def __init__(
        self,
        settings: Settings,
        turns: TurnStore,
        sessions: SessionStore,
        accounts: AccountStore,
        bus: EventBus,
        live: LiveSessions,
        runner: TurnRunner,
        tail_poll_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        # How often a waiting tail re-reads the log by itself: the only way to see another
        # process's writes on SQLite, a fallback behind LISTEN/NOTIFY on PostgreSQL.
        self.tail_poll_seconds = tail_poll_seconds
        self.turns = turns
        self.sessions = sessions
        self.accounts = accounts
        self.bus = bus
        self.live = live
        self.runner = runner
        self._accounts_seen: set[str] = set()
        self._key_locks = _KeyedLocks()

    # -- create -------------------------------------------------------------------
    def validate(self, req: CreateResponseRequest) -> None:
        """Checks that depend on configuration; each error names its field."""
        unknown = req.unknown_fields()
        if unknown:
            raise ServiceError(400, "unknown_parameter", f"Unknown parameter: '{unknown[0]}'.", unknown[0], retryable=False)
        check_request(req, self.server_tool_names())
        limit = self.settings.max_input_chars
        if isinstance(req.input, str):
            if len(req.input) > limit:
                raise _too_long("input", limit)
        else:  # a list, or None where `input` may be left out (the input-token count)
            self._check_messages(req.input or [])
            if req.previous_response_id is None:
                check_input(req, {}, limit)
        if req.instructions is not None and len(req.instructions) > self.settings.max_instructions_chars:
            raise _too_long("instructions", self.settings.max_instructions_chars)
        if req.model is not None and req.model not in self.settings.model_ids and req.previous_response_id is None:
            raise ServiceError(400, "model_not_found", f"Unknown model {req.model!r}; see GET /api/config/model.",
                               "model", retryable=False)

    def _check_messages(self, messages: list[Any]) -> None:
        """Bounds on the whole input, not only each message: a count of items and of a
        message's content parts, a size for every non-text field of a part, and a total."""
        s = self.settings
        if len(messages) > s.max_input_messages:
            raise _too_many("input", s.max_input_messages, "messages")
        total = 0
        for i, msg in enumerate(messages):
            if not isinstance(msg, InputMessage):  # a function call or its output: counted whole
                total += len(json.dumps(msg.model_dump(mode="json"), ensure_ascii=False))
                if total > s.max_input_total_chars:
                    break
                continue
            if len(content_text(msg.content)) > s.max_input_chars:
                raise _too_long(f"input[{i}].content", s.max_input_chars)
            if isinstance(msg.content, str):
                total += len(msg.content)
                continue
            if len(msg.content) > s.max_input_messages:
                raise _too_many(f"input[{i}].content", s.max_input_messages, "content parts")
            for j, part in enumerate(msg.content):
                for key, value in part.items():
                    if key == "text" and isinstance(value, str):
                        total += len(value)
                        continue
                    size = len(key) + len(json.dumps(value, ensure_ascii=False))
                    if size > s.max_content_field_chars:
                        raise _too_long(f"input[{i}].content[{j}].{key}", s.max_content_field_chars)
                    total += size
            if total > s.max_input_total_chars:
                break
        if total > s.max_input_total_chars:
            raise ServiceError(400, "input_too_large", f"The input's messages together are longer than "
                               f"{s.max_input_total_chars:,} characters.", "input", retryable=False)

    async def create(
        self, identity: Identity, req: CreateResponseRequest, idempotency_key: str | None = None
    ) -> ResponseObject:
        self.validate(req)
        if not identity.can_use_inference:
            raise ServiceError(
                403, "inference_provider_permission_required",
                f"This token lacks the {describe('inference.serverless.write')} permission that the agent's "
                "reasoning needs: grant it to the token for your own account (globally or scoped to your user) "
                "in your Hugging Face token settings.",
                retryable=False,
            )
        if not idempotency_key:
            return await self._create(identity, req, None)
        # Same-key retries in this process queue here rather than each taking a session
        # slot; across processes the database's unique key decides (`TurnStore.create`).
        async with self._key_locks.hold((identity.account, idempotency_key)):
            existing = await self.turns.by_idempotency_key(identity.account, idempotency_key)
            if existing is not None:
                return ResponseObject.model_validate(existing.snapshot)
            return await self._create(identity, req, idempotency_key)

    async def _create(self, identity: Identity, req: CreateResponseRequest,
                      idempotency_key: str | None) -> ResponseObject:
        now = time.time()
        new_session: Session | None = None
        if req.previous_response_id:
            prev = await self._owned_turn(identity, req.previous_response_id, "previous_response_id")
            session = await self.sessions.require(prev.session_id)
            if session.closed:
                raise _session_closed()
            check_input(req, await self.pending_client_calls(session.id), self.settings.max_input_chars)
            if req.max_cost_usd is not None:
                session.max_cost_usd = req.max_cost_usd
        else:
            session = new_session = Session(
                id=new_id("sess"), account=identity.account, agent="ml-agent",
                model=req.model or self.settings.default_model_id,
                max_cost_usd=req.max_cost_usd or DEFAULT_MAX_COST_USD, spent_usd=0.0, messages=[], pending=None,
                closed=False, created_at=now, updated_at=now,
            )
        turn_id = new_id("resp")
        snapshot = ResponseObject(
            id=turn_id, created_at=int(now), status="queued", background=req.background,
            instructions=req.instructions, model=session.model, previous_response_id=req.previous_response_id,
            metadata=req.metadata or {}, session_id=session.id, max_cost_usd=session.max_cost_usd, **echo(req),
        )
        first: list[Event] = [ResponseCreated(sequence_number=0, response=snapshot), ResponseQueued(sequence_number=1, response=snapshot)]
        rows = [(e.sequence_number, e.type, e.model_dump_json()) for e in first]
        turn = Turn(
            id=turn_id, session_id=session.id, account=identity.account, status="queued",
            request={**req.stored(), **turn_settings(req)},
            snapshot=snapshot.model_dump(mode="json"), last_seq=1, cancel_requested=False,
            lease_owner=self.runner.owner, lease_expires_at=now + self.settings.lease_seconds,
            idempotency_key=idempotency_key, created_at=now, updated_at=now,
        )
        try:
            # The slot is given back if anything below raises (`LiveSessions.hold`).
            with self.live.hold(session.id, identity.account, identity.token):
                if new_session is not None:
                    await self.turns.create(new_session, turn, rows)
                else:
                    extra = {"max_cost_usd": req.max_cost_usd} if req.max_cost_usd is not None else {}
                    await self.turns.create_followup(session.id, turn, rows, **extra)
                self.runner.start(turn_id, session.id)
        except LimitReached as exc:
            raise ServiceError(429, "session_limit_reached", exc.message, retryable=False,
                               retry_after=exc.retry_after) from None
        except DuplicateIdempotencyKey as dup:  # a concurrent create with this key won
            return ResponseObject.model_validate(dup.existing.snapshot)
        except SessionClosed:
            raise _session_closed() from None
        except SessionBusy as busy:
            raise _session_busy(busy) from None
        if identity.account not in self._accounts_seen:  # one write per account per process
            await self.accounts.seen(identity.account, identity.kind)
            self._accounts_seen.add(identity.account)
        return snapshot

    def server_tool_names(self) -> set[str]:
        """Every tool the server's agents run themselves (a client tool may not reuse a name)."""
        return set(self.runner.toolset_for({}).names())

    async def pending_client_calls(self, session_id: str) -> dict[str, str]:
        """The client tool calls the session's last response ended on (call id -> name),
        which the next request must answer with `function_call_output` items."""
        latest = await self.turns.latest_for_session(session_id)
        if latest is None or latest.status != "completed":
            return {}
        output = (latest.snapshot or {}).get("output") or []
        done = {i.get("call_id") for i in output if i.get("type") == "function_call_output"}  # logs of old servers
        return {i["call_id"]: i["name"] for i in output if i.get("type") == "function_call" and i["call_id"] not in done}

    # -- read ---------------------------------------------------------------------
    async def _owned_turn(self, identity: Identity, response_id: str, param: str | None = None) -> Turn:
        turn = await self.turns.get(response_id)
        if turn is None or (turn.account != identity.account and not identity.is_operator):
            raise not_found("response", response_id, param)
        return turn

    async def get(self, identity: Identity, response_id: str) -> ResponseObject:
        turn = await self._owned_turn(identity, response_id)
        return ResponseObject.model_validate(turn.snapshot)

    async def check_owner(self, identity: Identity, response_id: str) -> None:
        await self._owned_turn(identity, response_id)

    async def wait(self, response_id: str, timeout: float) -> ResponseObject:
        """Wait until the response is terminal or paused, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        with self.bus.subscribe(response_id) as sub:
            while True:
                turn = await self.turns.require(response_id)
                if turn.status in TERMINAL_STATUSES or turn.status == PAUSED:
                    return ResponseObject.model_validate(turn.snapshot)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ResponseObject.model_validate(turn.snapshot)
                await sub.wait(min(remaining, self.tail_poll_seconds))

    async def events(self, response_id: str, after: int = -1) -> AsyncIterator[StoredEvent | None]:
        """Replay from `after`, then tail live; `None` is a keep-alive tick. Ends after a
        terminal event, or after a pause that is still the last event of the log."""
        keepalive = self.settings.keepalive_seconds
        poll = self.tail_poll_seconds
        idle_since = time.monotonic()
        last_read = -poll
        with self.bus.subscribe(response_id) as sub:
            woken = False
            while True:
                # After a local publish the news is in memory; after a remote wake-up, on
                # the first read and on the periodic re-read, ask the database. A
                # keep-alive timeout alone reads nothing.
                if woken:
                    batch = self.bus.recent(response_id, after)
                elif time.monotonic() - last_read >= poll:
                    batch = None
                else:
                    batch = []
                if batch is None:
                    batch = await self.turns.read(response_id, after)
                    last_read = time.monotonic()
                    if not batch and await self._log_finished(response_id, after):
                        return  # resumed at (or past) the end of a finished log
                for i, event in enumerate(batch):
                    yield event
                    after = event.seq
                    idle_since = time.monotonic()
                    if event.type in TERMINAL_EVENT_TYPES:
                        return
                    if (event.type in PAUSE_EVENT_TYPES and i == len(batch) - 1
                            and not await self.turns.read(response_id, after, limit=1)):
                        return
                if batch:
                    woken = True
                    continue
                now = time.monotonic()
                if now - idle_since >= keepalive:
                    yield None
                    idle_since = now = time.monotonic()
                timeout = min(keepalive - (now - idle_since), poll - (now - last_read))
                woken = await sub.wait(max(timeout, 0.01))

    # -- input items, token count, delete ---------------------------------------------
    async def input_items(self, identity: Identity, response_id: str, after: str | None, limit: int,
                          order: Literal["asc", "desc"]) -> dict:
        turn = await self._owned_turn(identity, response_id)
        return page(input_items(turn.id, (turn.request or {}).get("input", "")), after, limit, order)

    async def count_input_tokens(self, identity: Identity, req: CreateResponseRequest) -> int:
        """An estimate (~4 characters a token, as the context guard counts) of what the
        turn's first model call would send: history, instructions, input and tool specs."""
        self.validate(req)
        history: list = []
        if req.previous_response_id:
            prev = await self._owned_turn(identity, req.previous_response_id, "previous_response_id")
            session = await self.sessions.get(prev.session_id)
            history = list(session.messages or []) if session is not None else []
            check_input(req, await self.pending_client_calls(prev.session_id), self.settings.max_input_chars)
        stored = req.stored()
        messages = turn_messages(history, stored.get("input", ""), req.instructions)
        specs = self.runner.toolset_for({}).specs() + chat_tools(req)
        return estimate_tokens(messages) + estimate_tokens(specs)

    async def delete(self, identity: Identity, response_id: str) -> dict:
        """Remove the response and its event log; a running one is cancelled first and
        its worker let go, so nothing writes to the log after it is gone."""
        turn = await self._owned_turn(identity, response_id)
        if turn.status not in TERMINAL_STATUSES:
            await self.cancel(identity, response_id)
            stopped = await self.wait(response_id, self.settings.lease_seconds)
            await self.runner.finished(response_id)
            if stopped.status not in TERMINAL_STATUSES:
                raise ServiceError(409, "response_still_running", f"Response {response_id} is still stopping after "
                                   "the cancel; retry the delete in a moment.", retryable=True)
        session = await self.sessions.get(turn.session_id)
        if session is not None and (session.pending or {}).get("response_id") == response_id:
            await self.sessions.update(session.id, pending=None)
        await self.turns.delete(response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    async def _log_finished(self, response_id: str, after: int) -> bool:
        """True when nothing will follow `after`: the turn is final and its log ends at or
        before `after`. A turn paused on an approval is not final: a stream resumed at
        the pause waits for the continuation (docs/cost-and-usage.md). Checked after the
        read, so an event appended in between is read on the next round, not missed."""
        end = await self.turns.log_end(response_id)
        if end is None:
            return True
        status, last_seq = end
        if last_seq > after:
            return False
        if status == PAUSED:
            turn = await self.turns.get(response_id)
            return turn is not None and not paused_on_approval(turn)  # server_restart is final
        return status in TERMINAL_STATUSES

    # -- cancel -------------------------------------------------------------------
    async def cancel(self, identity: Identity, response_id: str) -> ResponseObject:
        """Cancel: a queued or paused turn ends `cancelled` at once (a compare-and-set that
        the worker's claim cannot race); a running one is flagged for its worker and
        stopped, and the answer waits (briefly) for it to end."""
        turn = await self._owned_turn(identity, response_id)
        for _ in range(CANCEL_ATTEMPTS):
            if turn.status in ("queued", PAUSED):
                if turn.status == PAUSED and not paused_on_approval(turn):
                    break  # interrupted by a restart: already final
                ended = await self._end_cancelled(turn)
                if ended is not None:
                    await self.sessions.update(turn.session_id, pending=None)
                    self.runner.cancel_local(response_id)  # a task still waiting to claim it
                    return ended
            elif turn.status == "in_progress":
                if await self.turns.request_cancel(response_id):
                    self.runner.cancel_local(response_id)  # elsewhere: that process's keeper
                    after = await self.wait(response_id, CANCEL_WAIT_SECONDS)
                    if after.status != PAUSED:  # a pause that won the race is ended next round
                        return after
            else:
                break
            turn = await self.turns.require(response_id)
        return ResponseObject.model_validate(turn.snapshot)

    async def _end_cancelled(self, turn: Turn) -> ResponseObject | None:
        """Append `response.cancelled` only if the turn is still where it was read."""
        writer = GuardedWriter(self.turns, self.bus, turn)
        writer.add(cancelled_event(writer.state))
        if not await writer.commit("cancelled", lease_owner=None, lease_expires_at=None):
            return None
        return writer.state


def _session_closed() -> ServiceError:
    return ServiceError(409, "session_closed", "This session was closed (ended by its owner or killed by an operator); start a "
                        "new one without previous_response_id.", "previous_response_id", retryable=False)


def _session_busy(busy: SessionBusy) -> ServiceError:
    if busy.paused:
        return ServiceError(409, "session_busy", f"Session is paused on an approval in {busy.turn_id}; "
                            "answer it via POST /v1/responses/{id}/approvals first.", "previous_response_id",
                            retryable=False)
    return ServiceError(409, "session_busy", f"Session is still processing {busy.turn_id}; wait for it to finish.",
                        "previous_response_id", retryable=False)


class _KeyedLocks:
    """One asyncio lock per key while anyone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[object, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: object) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _too_many(param: str, limit: int, what: str) -> ServiceError:
    return ServiceError(400, "array_above_max_length", f"'{param}' holds more than {limit} {what}.", param,
                        retryable=False)


def _too_long(param: str, limit: int) -> ServiceError:
    return ServiceError(400, "string_above_max_length", f"'{param}' is longer than {limit:,} characters.", param,
                        retryable=False)
