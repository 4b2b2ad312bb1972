"""`TurnQueue`: the one place a turn is created, reopened and described.

A new turn is one database transaction (`store/turns.py`): the new session or the
follow-up's session fields, the turn row leased to this process, and its first two events
(`response.created`, `response.queued`). It is made while the session's live slot is held
(`LiveSessions.hold` gives the slot back if anything fails), then handed to the worker.
The races of docs/architecture.md ("Races are decided in the database") are decided here
and in the store: a follow-up takes only an idle session (`create_followup`, `FOR UPDATE`),
an idempotency key has one winner (the unique constraint; same-key requests in this process
queue on a lock first), and a turn reopened from outside its worker (a cancel, a restart,
an approval) changes only if it has not moved since it was read (`GuardedWriter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr

from ..auth.identity import Identity
from ..config import Settings
from ..errors import ServiceError
from ..events.bus import EventBus
from ..events.response import ResponseObject
from ..events.types import ResponseCreated, ResponseQueued
from ..store.protocols import Accounts, DuplicateIdempotencyKey, TurnLog, Turns
from ..store.records import SessionRecord, TurnRecord
from ..store.transient import is_transient
from .ids import new_id
from .live import LimitReached, LiveSession, LiveSessions
from .stored import StoredRequest
from .writer import EventWriter, GuardedWriter

log = logging.getLogger("mlagent.runtime")


@dataclass(frozen=True)
class NewSession:
    """A session that the turn starts (it is inserted in the turn's transaction)."""

    account: str
    agent: str
    model: str
    max_cost_usd: float


class Worker(Protocol):
    """What the queue needs of the runner (`runtime/runner.py`)."""

    owner: str

    def start(self, turn_id: str, session_id: str, agent: str | None = None) -> None: ...

    async def finished(self, turn_id: str) -> None: ...


def response_of(turn: TurnRecord) -> ResponseObject:
    """The response object a turn's row holds (its log's projection)."""
    return ResponseObject.model_validate(turn.snapshot)


def reopen(turns: TurnLog, bus: EventBus, turn: TurnRecord) -> EventWriter:
    """A writer that continues the turn's log where its row says it stands (its worker, or
    an approval that re-pauses it); `GuardedWriter(turns, bus, turn)` is the compare-and-set
    twin for steps that race the worker."""
    return EventWriter(turns, bus, turn.id, response_of(turn), turn.last_seq)


class TurnQueue:
    def __init__(self, settings: Settings, turns: Turns, accounts: Accounts, bus: EventBus,
                 live: LiveSessions, worker: Worker) -> None:
        self.settings = settings
        self.turns = turns
        self.accounts = accounts
        self.bus = bus
        self.live = live
        self.worker = worker
        self._accounts_seen: set[str] = set()
        self._key_locks = _KeyedLocks()

    @property
    def owner(self) -> str:
        return self.worker.owner

    # -- create -------------------------------------------------------------------
    async def once(self, account: str, key: str | None,
                   create: Callable[[], Awaitable[ResponseObject]]) -> ResponseObject:
        """Run `create` unless the idempotency key already names a turn (then its response).
        Same-key retries in this process queue here rather than each taking a session slot;
        across processes the database's unique key decides (`enqueue`)."""
        if not key:
            return await create()
        async with self._key_locks.hold((account, key)):
            existing = await self.turns.by_idempotency_key(account, key)
            return response_of(existing) if existing is not None else await create()

    async def enqueue(self, caller: Identity, session: SessionRecord | NewSession, request: StoredRequest, *,
                      token: SecretStr | None, shown: dict[str, Any], max_cost_usd: float | None = None,
                      idempotency_key: str | None = None) -> ResponseObject:
        """Create a queued turn of `session` (an existing one: only if it is idle) and start it.

        `token` is what the live session holds for the worker; `shown` are the response
        object's request-dependent fields; `max_cost_usd` replaces a follow-up session's cap.
        Raises `SessionBusy` / `SessionClosed` (the caller words them for its surface) and a
        429 when no live slot is free; a concurrent create with the same key answers the winner."""
        now = time.time()
        row: SessionRecord | None = None
        if isinstance(session, NewSession):
            row = SessionRecord(id=new_id("sess"), account=session.account, agent=session.agent, model=session.model,
                          max_cost_usd=session.max_cost_usd, spent_usd=0.0, messages=[], pending=None, closed=False,
                          created_at=now, updated_at=now)
            session_id, account, model, cap = row.id, session.account, session.model, session.max_cost_usd
        else:
            session_id, account, model = session.id, session.account, session.model
            cap = max_cost_usd if max_cost_usd is not None else session.max_cost_usd
        turn_id = new_id("resp")
        snapshot = ResponseObject(id=turn_id, created_at=int(now), status="queued", model=model, session_id=session_id,
                                  max_cost_usd=cap, **shown)
        first: list[ResponseCreated | ResponseQueued] = [ResponseCreated(sequence_number=0, response=snapshot), ResponseQueued(sequence_number=1, response=snapshot)]
        turn = TurnRecord(id=turn_id, session_id=session_id, account=account, status="queued", request=request.dump(),
                    snapshot=snapshot.model_dump(mode="json"), last_seq=1, cancel_requested=False,
                    lease_owner=self.owner, lease_expires_at=now + self.settings.lease_seconds,
                    idempotency_key=idempotency_key, created_at=now, updated_at=now, agent=request.agent)
        rows = [(e.sequence_number, e.type, e.model_dump_json()) for e in first]
        async def insert_and_start() -> None:
            if row is not None:
                await self.turns.create(row, turn, rows)
            else:  # the idle check and the insert are one transaction
                extra = {"max_cost_usd": max_cost_usd} if max_cost_usd is not None else {}
                await self.turns.create_followup(session_id, turn, rows, **extra)
            self.worker.start(turn_id, session_id, request.agent or session.agent)

        try:
            with self._hold(session_id, account, token):  # the slot is given back if this raises
                # Shielded: a caller that goes away mid-create never leaves a committed turn
                # unstarted (and its outcome is still retrieved, so nothing is logged as lost).
                inserting = asyncio.ensure_future(insert_and_start())
                inserting.add_done_callback(lambda t: t.cancelled() or t.exception())
                await asyncio.shield(inserting)
        except DuplicateIdempotencyKey as dup:  # a concurrent create with this key won
            return response_of(dup.existing)
        if caller.account not in self._accounts_seen:  # one write per account per process
            try:
                await self.accounts.seen(caller.account, caller.kind)
                self._accounts_seen.add(caller.account)
            except Exception as exc:  # the turn is created and running: the next create records the account
                if not is_transient(exc):
                    raise
                log.warning("recording account %s failed: %s", caller.account, type(exc).__name__)
        return snapshot

    # -- reopen -------------------------------------------------------------------
    def attach(self, session_id: str, account: str, token: SecretStr | None) -> LiveSession:
        """Make a paused turn's session live again for its continuation (429 when full)."""
        try:
            return self.live.attach(session_id, account, token)
        except LimitReached as exc:
            raise _limit_error(exc) from None

    async def let_go(self, turn_id: str) -> None:
        """Wait until this process's task of a just-paused turn has released it."""
        await self.worker.finished(turn_id)

    async def requeue(self, turn_id: str, session_id: str, **shown: Any) -> ResponseObject | None:
        """Continue a paused turn the store has set back to `queued` with this process's lease:
        its `response.queued` lands only if nothing moved it meanwhile (a cancel), then it
        runs. None when it moved."""
        turn = await self.turns.get(turn_id)
        if turn is None or turn.status != "queued":
            return None
        writer = GuardedWriter(self.turns, self.bus, turn)
        writer.add(ResponseQueued(response=writer.state.model_copy(update={"status": "queued", **shown})))
        if not await writer.commit("queued"):
            return None
        self.worker.start(turn_id, session_id)
        return writer.state

    def reopen(self, turn: TurnRecord) -> EventWriter:
        return reopen(self.turns, self.bus, turn)

    @contextlib.contextmanager
    def _hold(self, session_id: str, account: str, token: SecretStr | None) -> Iterator[LiveSession]:
        try:
            with self.live.hold(session_id, account, token) as live:
                yield live
        except LimitReached as exc:
            raise _limit_error(exc) from None


def _limit_error(exc: LimitReached) -> ServiceError:
    return ServiceError(429, "session_limit_reached", exc.message, retryable=False, retry_after=exc.retry_after)


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
