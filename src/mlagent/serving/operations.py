"""The inference-operations log writer: predict calls queue, a background task writes them.

One insert per predict would make the database the bottleneck of serving; so a predict
queues its record (its input rows encoded compactly: rowcodec.py, about a microsecond a
row; its response bytes as text) and a writer inserts the queue in small slices, every
`interval` seconds or at `batch` records. Encoding when the call is queued costs a predict
less than handing the rows to a thread did: an encoding thread held the GIL for
milliseconds a batch, and every predict that arrived meanwhile waited for it (the p99 of
a sub-millisecond predict). The queue is bounded: at `max_pending` queued records a
predict waits for the writer (backpressure, never loss), so a database that cannot keep
up slows serving down instead of growing memory. Readers call `flush()` first, so a caller
always sees its own operations. `close()` lets the writer finish and writes what is left;
an insert under way is shielded from cancellation, so a clean shutdown loses none.

What a kill -9 loses: the records queued and not yet inserted, i.e. at most the last
`interval` (0.5 s) of predicts, more only while the database is behind (then at most
`max_pending` + one slice). This log is the seed's monitoring record, not an audit trail;
docs/mlconnector.md says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ..store.protocols import ModelRegistry

log = logging.getLogger("mlagent.serving")


def _data_text(data: Any) -> str:
    """The record's `data`: "" when not recorded, else the inputs as rowcodec stores them."""
    if data is None:
        return ""
    global _rowcodec
    if _rowcodec is None:
        from . import rowcodec as _rowcodec  # NumPy: imported by the first predict, not at start
    return _rowcodec.encode(data)


_rowcodec: Any = None


class OperationRecorder:
    def __init__(self, store: ModelRegistry, batch: int = 1000, interval: float = 0.5,
                 max_pending: int = 20_000, slice_rows: int = 64, slice_bytes: int = 1 << 17) -> None:
        self.store = store
        self.batch = batch  # queued records that wake the writer before `interval`
        # Each insert is one small transaction (at most `slice_rows` records, about `slice_bytes`)
        # run on the event loop (SQLite's too: store/sqlite_inline.py) as a task of its own, so
        # the requests that arrived meanwhile run between two slices: a predict waits at most
        # one slice (0.2-0.7 ms) behind the log. A whole batch on a worker thread cost more:
        # that thread and the loop handed the GIL to each other around every row, and an
        # encoding thread held it for milliseconds (docs/performance.md, "Predict's p99").
        self.slice_rows = slice_rows
        self.slice_bytes = slice_bytes
        self.interval = interval
        self.max_pending = max_pending
        self._pending: list[dict[str, Any]] = []  # rows for ModelRegistry.add_operations
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="operations-recorder")

    async def add(self, account: str, ownerid: str, deployment_id: str, model_id: str, data: Any,
                  result: str | bytes) -> None:
        """Queue one operation (`data` None: its inputs are not recorded); waits while the queue is full."""
        while len(self._pending) >= self.max_pending:
            self._room.clear()
            self._wake.set()
            await self._room.wait()
        self._pending.append({"account": account, "ownerid": ownerid, "deployment_id": deployment_id,
                              "model_id": model_id, "data": _data_text(data),
                              "result": result if isinstance(result, str) else result.decode(),
                              "created_at": time.time()})
        if len(self._pending) >= self.batch:
            self._wake.set()

    async def flush(self) -> None:
        """Write what is queued now, in slices (not what arrives meanwhile: a reader would wait on)."""
        async with self._lock:
            left = len(self._pending)
            while left > 0:
                n, size = 0, 0
                while n < min(left, self.slice_rows) and (n == 0 or size < self.slice_bytes):
                    size += len(self._pending[n]["data"]) + len(self._pending[n]["result"])
                    n += 1
                left -= n
                ops, self._pending = self._pending[:n], self._pending[n:]
                try:
                    await asyncio.shield(self._write(ops))
                except asyncio.CancelledError:
                    raise  # the shielded insert carries on
                except Exception:  # noqa: BLE001 - keep them for the next attempt
                    self._pending[:0] = ops
                    raise
                finally:
                    if len(self._pending) < self.max_pending:
                        self._room.set()

    async def _write(self, ops: list[dict[str, Any]]) -> None:
        await self.store.add_operations(ops)

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
