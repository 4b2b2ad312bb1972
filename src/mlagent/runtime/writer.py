"""Appends a turn's events: numbers them, reduces them, persists them by group commit,
and wakes live subscribers only after the transaction holding them committed (a streamed
event is durable).

Group commit: when no commit is in flight an event is written at once (latency: one
commit); events emitted while a commit is in flight queue up and go together in the next
transaction (throughput grows with load, and a fast token stream costs a transaction per
commit time, not per token). `emit` does not wait for the commit, so the agent keeps
reading the model meanwhile; `flush`/`close` wait for everything emitted so far.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from ..events.bus import EventBus
from ..events.reducer import apply
from ..events.response import ResponseObject
from ..events.types import Event, ForwardedEvent, StoredEvent
from ..observability.turns import observe
from ..store.protocols import TurnLog
from ..store.records import TurnRecord
from ..store.transient import retrying

# Past this many queued events `emit` waits for the commit in flight (back-pressure).
MAX_BATCH = 512


class EventWriter:
    def __init__(self, store: TurnLog, bus: EventBus, turn_id: str, state: ResponseObject, last_seq: int) -> None:
        self._store = store
        self._bus = bus
        self.turn_id = turn_id
        self.state = state
        self.last_seq = last_seq
        self._pending: list[tuple[int, str, str]] = []
        self._committer: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._closing: dict[str, Any] | None = None
        self._closed_with: dict[str, Any] = {}

    async def emit(self, event: Event | ForwardedEvent) -> Event | ForwardedEvent:
        """Number, reduce and queue `event` for the next commit (started now when idle)."""
        self.stage(event)
        if self._committer is None or self._committer.done():
            self.send()
        elif len(self._pending) >= MAX_BATCH:
            await self.flush()
        return event

    def stage(self, event: Event | ForwardedEvent) -> Event | ForwardedEvent:
        """Number, reduce and queue `event` without starting a commit: it goes with the next
        `emit`'s (or `close`'s), one transaction for both, when the caller knows one follows
        shortly (the turn's first events; its last one, which `close` ends the lease with)."""
        if self._error is not None:
            raise self._error  # a commit failed: nothing more is written, so the log has no gap
        self.last_seq += 1
        event.sequence_number = self.last_seq
        self.state = apply(self.state, event)
        observe(self.turn_id, self.state, event)  # logs, metrics, spans (observability/turns.py)
        self._pending.append((event.sequence_number, event.type, event.model_dump_json()))
        return event

    def send(self) -> None:
        """Start committing what is staged, without waiting."""
        if self._pending and (self._committer is None or self._committer.done()):
            self._committer = asyncio.create_task(self._commit_pending(), name=f"events:{self.turn_id}")

    async def _commit_pending(self) -> None:
        """Commit what is queued, batch after batch, until nothing is. Its own task: a
        cancelled turn never leaves a half-written log behind."""
        while self._pending and self._error is None:
            # The batch and the state it leads to are taken together (no await between).
            batch, self._pending = self._pending, []
            snapshot, status = self.state.model_dump(mode="json"), self.state.status
            values, self._closing = self._closing or {}, None  # `close`'s columns ride on its last batch
            try:  # a full pool or a dropped connection wrote nothing: the same batch again
                await retrying(partial(self._store.append, self.turn_id, batch, snapshot, status, **values),
                               f"append to {self.turn_id}")
                self._closed_with = values or self._closed_with
            except BaseException as exc:  # noqa: BLE001 - kept for `emit`/`flush` to raise
                self._error = exc
                return
            self._bus.publish(self.turn_id, [StoredEvent(*row) for row in batch])

    @property
    def broken(self) -> bool:
        """A commit failed for good: nothing more is written through this writer."""
        return self._error is not None

    async def flush(self) -> None:
        """Wait until every event emitted so far is committed (or raise why not)."""
        while self._error is None and (self._pending or (self._committer is not None and not self._committer.done())):
            if self._committer is None or self._committer.done():
                self._committer = asyncio.create_task(self._commit_pending(), name=f"events:{self.turn_id}")
            await asyncio.wait([self._committer])  # waiting is cancellable; the commit is not
        if self._error is not None:
            raise self._error

    async def close(self, **values: Any) -> bool:
        """Commit everything emitted or staged; `values` (columns of the turn, e.g. the end
        of its lease) are set with the last batch when one is still queued. Returns whether
        they were: if not, the caller sets them itself."""
        if values and self._pending:
            self._closing = values
        try:
            await self.flush()
        finally:
            self._closing = None
        return bool(values) and self._closed_with == values


class GuardedWriter:
    """Events written to a turn from outside its worker (a cancel, crash recovery, an
    approval): staged, then appended in one transaction only if the turn is still in the
    status and at the point of its log where it was read. So such a step either wins
    cleanly over a racing claim or worker write, or changes nothing."""

    def __init__(self, store: TurnLog, bus: EventBus, turn: TurnRecord) -> None:
        self._store = store
        self._bus = bus
        self.turn_id = turn.id
        self.state = ResponseObject.model_validate(turn.snapshot)
        self.last_seq = turn.last_seq
        self._expect = (turn.status, turn.last_seq)
        self._rows: list[tuple[int, str, str]] = []
        self._staged: list[tuple[Event, ResponseObject]] = []

    def add(self, event: Event) -> None:
        self.last_seq += 1
        event.sequence_number = self.last_seq
        self.state = apply(self.state, event)
        self._staged.append((event, self.state))
        self._rows.append((event.sequence_number, event.type, event.model_dump_json()))

    async def commit(self, status: str, **values: object) -> bool:
        """Append what was added and set `status`; False (nothing written) if the turn moved."""
        if not await asyncio.shield(self._store.append(self.turn_id, self._rows, self.state.model_dump(mode="json"),
                                                       status, only_if=self._expect, **values)):
            return False
        for event, state in self._staged:  # observed once written, never for a step that lost its race
            observe(self.turn_id, state, event)
        self._bus.publish(self.turn_id, [StoredEvent(*row) for row in self._rows])
        return True
