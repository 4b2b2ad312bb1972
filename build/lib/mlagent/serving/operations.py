"""The inference-operations log writer: predict calls enqueue, a background task writes batches.

One insert per predict would make the database the bottleneck of serving; batching keeps
it off the request path. Readers call `flush()` first, so a caller always sees its own
operations. `close()` lets the writer finish and writes what is left; an insert under way is
shielded from cancellation, so a clean shutdown loses none."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ..store.registry import RegistryStore

log = logging.getLogger("mlagent.serving")


class OperationRecorder:
    def __init__(self, store: RegistryStore, batch: int = 1000, interval: float = 0.5) -> None:
        self.store = store
        self.batch = batch
        self.interval = interval
        self._pending: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="operations-recorder")

    def add(self, row: dict[str, Any]) -> None:
        """Queue one operation: account, ownerid, deployment_id, model_id, data, result, created_at."""
        self._pending.append(row)
        if len(self._pending) >= self.batch:
            self._wake.set()

    async def flush(self) -> None:
        async with self._lock:
            rows, self._pending = self._pending, []
            if rows:
                try:
                    await asyncio.shield(self.store.add_operations(rows))
                except asyncio.CancelledError:
                    raise  # the shielded insert carries on
                except Exception:  # noqa: BLE001 - keep them for the next attempt
                    self._pending[:0] = rows
                    raise

    async def _loop(self) -> None:
        while not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("could not write inference operations; retrying")
                await asyncio.sleep(1)

    async def close(self) -> None:
        """Stop the writer and write every queued operation (a clean shutdown loses none)."""
        self._closing = True
        self._wake.set()
        if self._task:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 30)
        try:
            await self.flush()
        except Exception:  # noqa: BLE001
            log.exception("could not write %d inference operations at shutdown", len(self._pending))
