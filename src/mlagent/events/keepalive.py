"""One keep-alive clock for every live tail of the process.

An idle tail sends a comment every `period` seconds so proxies and clients know the
connection is alive. A timer per tail (a `wait_for` with a timeout, re-armed after every
batch) costs each of 2,000 idle tails a timer, a task and a cancellation per period; here
one task ticks every half period for all of them, and a tail that has sent nothing for two
ticks in a row is woken to send its comment. So an idle tail sends one every `period`
seconds, and after its last event a tail is never quiet for longer than `period` (between
half of it and all of it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Protocol


class Ticked(Protocol):
    def tick(self) -> None:
        """Called every half period; the tail decides whether a keep-alive is due."""


class KeepAliveClock:
    def __init__(self, period: float) -> None:
        self.period = period
        self._watched: set[Ticked] = set()
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, tail: Ticked) -> Iterator[None]:
        """Tick `tail` while the block runs; the clock runs only while it has tails."""
        self._watched.add(tail)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sse-keepalive")
        try:
            yield
        finally:
            self._watched.discard(tail)
            if not self._watched and self._task is not None:
                self._task.cancel()
                self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period / 2)
            for tail in list(self._watched):
                tail.tick()
