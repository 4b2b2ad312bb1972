"""`ResponsesService`: what the /v1 surface (and the task surfaces) call.

It validates what depends on configuration, enforces ownership and limits, persists new
turns with their first events, and reads responses and event streams from the log.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Literal

from ..agent.history import content_text, turn_messages
from ..agent.loop import estimate_tokens
from ..auth.identity import Identity, describe
from ..config import Settings
from ..errors import ServiceError, not_found
from ..events.bus import EventBus
from ..events.keepalive import KeepAliveClock
from ..events.response import TERMINAL_STATUSES, ResponseObject
from ..events.types import (
    PAUSE_EVENT_TYPES,
    TERMINAL_EVENT_TYPES,
    StoredEvent,
    cancelled_event,
)
from ..store.protocols import SessionBusy, SessionClosed, Sessions, Turns
from ..store.records import SessionRecord, TurnRecord, paused_on_approval
from ..store.transient import STREAM_READ_ATTEMPTS, retrying
from .finished import FinishedResponses
from .items import input_items, page
from .live import LiveSessions
from .requests import CreateResponseRequest, InputMessage
from .runner import TurnRunner
from .stored import Credential, StoredRequest
from .surface import chat_tools, check_input, check_request, echo, stored_request
from .turnqueue import NewSession, TurnQueue, response_of
from .writer import GuardedWriter

DEFAULT_MAX_COST_USD = 5.0
PAUSED = "incomplete"
# A cancel re-reads the turn when it moved meanwhile (queued -> running -> paused).
CANCEL_ATTEMPTS = 4
# How long a cancel of a running turn waits for its worker to end it before answering.
CANCEL_WAIT_SECONDS = 5.0
# Events per read of the log when a stream replays it.
REPLAY_PAGE = 2000


class ResponsesService:
    def __init__(
        self,
        settings: Settings,
        turns: Turns,
        sessions: Sessions,
        bus: EventBus,
        live: LiveSessions,
        runner: TurnRunner,
        queue: TurnQueue,
        finished: FinishedResponses | None = None,
    ) -> None:
        self.settings = settings
        self.turns = turns
        self.sessions = sessions
        self.bus = bus
        self.live = live
        self.runner = runner
        self.queue = queue
        self.keepalive = KeepAliveClock(settings.keepalive_seconds)  # one timer for every tail
        # Finished responses' bytes, where this process hears of every delete (server.py).
        self.finished = finished

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

    async def create(self, identity: Identity, req: CreateResponseRequest, idempotency_key: str | None = None, *,
                     allowed_tools: list[str] | None = None, credential: Credential = "caller") -> ResponseObject:
        """Queue a turn. `allowed_tools` restricts the agent's tools (a task's `tools`);
        `credential="server"` runs it on the server's LLM key (an API-key caller's task)."""
        self.validate(req)
        if not identity.can_use_inference:
            raise ServiceError(
                403, "inference_provider_permission_required",
                f"This token lacks the {describe('inference.serverless.write')} permission that the agent's "
                "reasoning needs: grant it to the token for your own account (globally or scoped to your user) "
                "in your Hugging Face token settings.",
                retryable=False,
            )
        stored = stored_request(req, allowed_tools=allowed_tools, credential=credential)
        return await self.queue.once(identity.account, idempotency_key,
                                     lambda: self._create(identity, req, stored, idempotency_key))

    async def _create(self, identity: Identity, req: CreateResponseRequest, stored: StoredRequest,
                      idempotency_key: str | None) -> ResponseObject:
        session: SessionRecord | NewSession
        if req.previous_response_id:
            _, session, latest = await self._chain_point(identity, req.previous_response_id)
            if session.closed:
                raise _session_closed()
            check_input(req, pending_client_calls(latest), self.settings.max_input_chars)
        else:
            session = NewSession(identity.account, "ml-agent", req.model or self.settings.default_model_id,
                                 req.max_cost_usd or DEFAULT_MAX_COST_USD)
        shown = dict(background=req.background, instructions=req.instructions,
                     previous_response_id=req.previous_response_id, metadata=req.metadata or {}, **echo(req))
        try:
            return await self.queue.enqueue(identity, session, stored, token=identity.token, shown=shown,
                                            max_cost_usd=req.max_cost_usd, idempotency_key=idempotency_key)
        except SessionClosed:
            raise _session_closed() from None
        except SessionBusy as busy:
            raise _session_busy(busy) from None

    def server_tool_names(self) -> set[str]:
        """Every tool the server's agents run themselves (a client tool may not reuse a name)."""
        return set(self.runner.toolset_for(None).names())

    # -- read ---------------------------------------------------------------------
    async def _owned_turn(self, identity: Identity, response_id: str, param: str | None = None) -> TurnRecord:
        turn = await self.turns.get(response_id)
        if turn is None or (turn.account != identity.account and not identity.is_operator):
            raise not_found("response", response_id, param)
        return turn

    async def _chain_point(self, identity: Identity, response_id: str) -> tuple[TurnRecord, SessionRecord, TurnRecord]:
        """The chained-on turn, its session and the session's latest turn, in one read."""
        found = await self.turns.chain_point(response_id)
        if found is None or (found[0].account != identity.account and not identity.is_operator):
            raise not_found("response", response_id, "previous_response_id")
        return found

    async def get(self, identity: Identity, response_id: str) -> ResponseObject:
        found = await self.turns.snapshot(response_id)  # two columns: the hot read of a response
        if found is None or (found[0] != identity.account and not identity.is_operator):
            raise not_found("response", response_id)
        return ResponseObject.model_validate(found[1])

    async def get_json(self, identity: Identity, response_id: str) -> bytes:
        """`get` as the wire JSON; a finished one from memory when kept (runtime/finished.py)."""
        kept = self.finished.get(response_id) if self.finished is not None else None
        if kept is None:
            epoch = self.finished.epoch if self.finished is not None else 0
            found = await self.turns.snapshot(response_id)
            if found is None:
                raise not_found("response", response_id)
            response = ResponseObject.model_validate(found[1])
            kept = (found[0], response.model_dump_json().encode())
            if self.finished is not None and response.status in TERMINAL_STATUSES:
                self.finished.put(response_id, kept[0], kept[1], epoch)
        if kept[0] != identity.account and not identity.is_operator:
            raise not_found("response", response_id)
        return kept[1]

    async def check_owner(self, identity: Identity, response_id: str) -> None:
        account = await self.turns.account_of(response_id)
        if account is None or (account != identity.account and not identity.is_operator):
            raise not_found("response", response_id)

    async def wait(self, response_id: str, timeout: float) -> ResponseObject:
        """Wait until the response is terminal or paused, or `timeout` passes. Reads where
        the log stands once, then follows the bus's events (this process's writes) until
        one ends or pauses the turn, and reads the response once at the end; only a wake-up
        from another process (NOTIFY, the shared re-read) sends it back to the database."""
        deadline = time.monotonic() + timeout
        with self.bus.subscribe(response_id) as sub:
            status, after = await self.turns.log_end(response_id) or ("", -1)
            while status not in TERMINAL_STATUSES and status != PAUSED:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await sub.wait(remaining):
                    break
                news = self.bus.recent(response_id, after)
                if news is None:  # written elsewhere: ask the log
                    status, after = await self.turns.log_end(response_id) or ("", -1)
                elif news:
                    after = news[-1].seq
                    if any(e.type in TERMINAL_EVENT_TYPES or e.type in PAUSE_EVENT_TYPES for e in news):
                        break
            found = await self.turns.snapshot(response_id)
            if found is None:
                raise not_found("response", response_id)
            return ResponseObject.model_validate(found[1])

    async def events(self, response_id: str, after: int = -1) -> AsyncIterator[list[StoredEvent] | None]:
        """Replay from `after` in pages, then tail live, in batches; `None` is a keep-alive
        tick. Ends after a terminal event, or after a pause that is still the last event of
        the log. Live events come from the bus's memory (the same objects every subscriber
        gets, frames encoded once); the log is read at the start, for each replay page and
        when memory does not reach back (another process wrote, or this tail fell behind)."""
        with self.bus.subscribe(response_id) as sub, self.keepalive.watch(sub):
            source = "log"  # where the next batch comes from: "log", "memory", or nothing new
            while True:
                if source == "log":  # reads are retried while the database is away: the stream stays open
                    batch = await retrying(partial(self.turns.read, response_id, after, limit=REPLAY_PAGE),
                                           f"log read of {response_id}", STREAM_READ_ATTEMPTS)
                    if not batch and await retrying(partial(self._log_finished, response_id, after),
                                                    f"log end of {response_id}", STREAM_READ_ATTEMPTS):
                        return  # resumed at (or past) the end of a finished log
                elif source == "memory":
                    news = self.bus.recent(response_id, after)
                    if news is None:  # memory does not reach back: the log has them
                        source = "log"
                        continue
                    batch = news
                else:
                    batch = []
                for i, event in enumerate(batch):
                    if event.type in TERMINAL_EVENT_TYPES:
                        yield batch[:i + 1]
                        return
                if batch:
                    yield batch
                    sub.sent()
                    after = batch[-1].seq
                    if batch[-1].type in PAUSE_EVENT_TYPES and not await retrying(
                            partial(self.turns.read, response_id, after, limit=1), f"log read of {response_id}", STREAM_READ_ATTEMPTS):
                        return
                    if source == "log" and len(batch) == REPLAY_PAGE:
                        continue  # the next page
                if await sub.next():
                    source = "memory"
                else:  # a keep-alive (the shared clock's) reads nothing
                    yield None
                    source = ""

    # -- input items, token count, delete ---------------------------------------------
    async def input_items(self, identity: Identity, response_id: str, after: str | None, limit: int,
                          order: Literal["asc", "desc"]) -> dict[str, Any]:
        turn = await self._owned_turn(identity, response_id)
        return page(input_items(turn.id, StoredRequest.load(turn.request).input), after, limit, order)

    async def count_input_tokens(self, identity: Identity, req: CreateResponseRequest) -> int:
        """An estimate (~4 characters a token, as the context guard counts) of what the
        turn's first model call would send: history, instructions, input and tool specs."""
        self.validate(req)
        history: list[dict[str, Any]] = []
        if req.previous_response_id:
            _, session, latest = await self._chain_point(identity, req.previous_response_id)
            history = list(session.messages or [])
            check_input(req, pending_client_calls(latest), self.settings.max_input_chars)
        messages = turn_messages(history, req.stored().get("input", ""), req.instructions)
        specs = self.runner.toolset_for(None).specs() + chat_tools(req)
        return estimate_tokens(messages) + estimate_tokens(specs)

    async def delete(self, identity: Identity, response_id: str) -> dict[str, Any]:
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
        if self.finished is not None:
            self.finished.forget(response_id)
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
            # Read again for the reason; an approval may have re-queued the turn in between
            # (then it is not final: the continuation's events follow).
            turn = await self.turns.get(response_id)
            return (turn is not None and turn.status == PAUSED and turn.last_seq <= after
                    and not paused_on_approval(turn))  # server_restart is final
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
        return response_of(turn)

    async def _end_cancelled(self, turn: TurnRecord) -> ResponseObject | None:
        """Append `response.cancelled` only if the turn is still where it was read."""
        writer = GuardedWriter(self.turns, self.bus, turn)
        writer.add(cancelled_event(writer.state))
        if not await writer.commit("cancelled", lease_owner=None, lease_expires_at=None):
            return None
        return writer.state


def pending_client_calls(latest: TurnRecord) -> dict[str, str]:
    """The client tool calls the session's latest response ended on (call id -> name),
    which the next request must answer with `function_call_output` items."""
    if latest.status != "completed":
        return {}
    output = (latest.snapshot or {}).get("output") or []
    done = {i.get("call_id") for i in output if i.get("type") == "function_call_output"}  # logs of old servers
    return {i["call_id"]: i["name"] for i in output if i.get("type") == "function_call" and i["call_id"] not in done}


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


def _too_many(param: str, limit: int, what: str) -> ServiceError:
    return ServiceError(400, "array_above_max_length", f"'{param}' holds more than {limit} {what}.", param,
                        retryable=False)


def _too_long(param: str, limit: int) -> ServiceError:
    return ServiceError(400, "string_above_max_length", f"'{param}' is longer than {limit:,} characters.", param,
                        retryable=False)
