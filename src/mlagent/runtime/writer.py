"""Appends a turn's events: numbers them, reduces them, persists in short batches, and
wakes live subscribers only after the batch is committed (a streamed event is durable).
"""

from __future__ import annotations

import asyncio
import time

from ..events.bus import EventBus
from ..events.reducer import apply
from ..events.response import ResponseObject
from ..events.types import Event, ForwardedEvent, OutputTextDelta, StoredEvent
from ..observability.turns import observe
from ..store.tables import Turn
from ..store.turns import TurnStore

# Text deltas may wait this long to share a transaction; everything else is written at once.
DELTA_BATCH_SECONDS = 0.02
MAX_BATCH = 256


class EventWriter:
    def __init__(self, store: TurnStore, bus: EventBus, turn_id: str, state: ResponseObject, last_seq: int) -> None:
        self._store = store
        self._bus = bus
        self.turn_id = turn_id
        self.state = state
        self.last_seq = last_seq
        self._pending: list[tuple[int, str, str]] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task | None = None
        self._first_pending_at = 0.0

    async def emit(self, event: Event | ForwardedEvent) -> Event | ForwardedEvent:
        """Number, reduce and queue `event`; deltas are batched briefly, others flushed now."""
        self.last_seq += 1
        event.sequence_number = self.last_seq
        self.state = apply(self.state, event)
        observe(self.turn_id, self.state, event)  # logs, metrics, spans (observability/turns.py)
        if not self._pending:
            self._first_pending_at = time.monotonic()
        self._pending.append((event.sequence_number, event.type, event.model_dump_json()))
        if (
            not isinstance(event, OutputTextDelta)
            or len(self._pending) >= MAX_BATCH
            or time.monotonic() - self._first_pending_at >= DELTA_BATCH_SECONDS
        ):
            await self.flush()
        elif self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._flush_later())
        return event

    async def _flush_later(self) -> None:
        await asyncio.sleep(DELTA_BATCH_SECONDS)
        await self.flush()

    async def flush(self) -> None:
        """Write what is queued. Shielded: a cancelled turn must not leave a gap in its log."""
        await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            await self._store.append(self.turn_id, batch, self.state.model_dump(mode="json"), self.state.status)
        self._bus.publish(self.turn_id, [StoredEvent(*row) for row in batch])

    async def close(self) -> None:
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
        await self.flush()


class GuardedWriter:
    """Events written to a turn from outside its worker (a cancel, crash recovery, an
    approval): staged, then appended in one transaction only if the turn is still in the
    status and at the point of its log where it was read. So such a step either wins
    cleanly over a racing claim or worker write, or changes nothing."""

    def __init__(self, store: TurnStore, bus: EventBus, turn: Turn) -> None:
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
