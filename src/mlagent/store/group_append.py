"""Group commit across turns: the appends of many live turns that arrive while one
transaction is in flight go together in the next one.

Each turn's `EventWriter` already batches its own events while its commit is in flight.
With many turns live at once that is not enough: every turn's commit is its own
transaction of several driver round trips (on SQLite each was a hop to aiosqlite's thread
and back through a busy event loop, all through the one pooled connection; now the calls
run on the loop, store/sqlite_inline.py, and a transaction is cheaper than a wake-up), so N live turns
queue N transactions and a token waited for all of them (30 live runs: p50 ~500 ms from the
LLM's chunk to its commit, with 23 events per commit). Here the first append to arrive
while none is being written starts a writer task; it takes everything queued and writes it
as ONE transaction, then whatever queued meanwhile, and so on. Every caller learns its own
outcome only after that transaction committed (so a published event is still durable).

A transaction that fails as a whole is retried one append at a time, each in its own
transaction, so one turn's bad batch fails only that turn; one that failed for a passing
reason (a full pool, a lost connection: store/transient.py) fails every caller at once,
and each caller's writer retries its own batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .protocols import EventRows
from .transient import is_transient

T = TypeVar("T")


@dataclass(frozen=True)
class Append:
    """One turn's batch: its events and the projection they lead to."""

    turn_id: str
    events: EventRows
    snapshot: dict[str, Any]
    status: str


class GroupAppender(Generic[T]):
    """`write_many(items)` writes items (appends of distinct turns, or new turns) in one
    transaction and returns, per item, whether it was written (an append: whether its turn
    was still there); `write_one(item)` writes one alone, and may raise for that item only."""

    def __init__(self, write_many: Callable[[Sequence[T]], Awaitable[list[bool]]],
                 write_one: Callable[[T], Awaitable[bool]], name: str = "events:group-commit") -> None:
        self._write_many = write_many
        self._write_one = write_one
        self._name = name
        self._queue: list[tuple[T, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, item: T) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._writer is None or self._writer.done():
            # Its own task: a caller that is cancelled never cuts a shared transaction short.
            self._writer = asyncio.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                outcomes = await self._write_many([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - each caller gets its own outcome
                if len(batch) == 1 or is_transient(exc):  # a full pool fails each alone too: callers retry
                    for _, future in batch:
                        _fail(future, exc)
                else:  # which append broke it? each alone: only that turn fails
                    for item, future in batch:
                        await self._settle_alone(item, future)
                continue
            except BaseException as exc:  # cancelled (shutdown): no caller waits forever
                for _, future in [*batch, *self._queue]:
                    _fail(future, exc)
                self._queue = []
                raise
            for (_, future), ok in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(ok)

    async def _settle_alone(self, item: T, future: asyncio.Future[bool]) -> None:
        try:
            ok = await self._write_one(item)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, whose turn then fails
            _fail(future, exc)
            return
        if not future.done():
            future.set_result(ok)


def _fail(future: asyncio.Future[bool], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
