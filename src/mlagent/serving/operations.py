"""The inference-operations log writer: predict calls queue, a background task writes batches.

One insert per predict would make the database the bottleneck of serving, and encoding a
call's input rows as JSON cost a 100-row predict a quarter of its time; so a predict only
queues the objects it already has (its input matrix, its response bytes), and the writer
encodes them in a thread (rows compactly: rowcodec.py) and inserts them in bulk, every
`interval` seconds or at `batch` records, about 1 MB an insert. The queue is bounded: at
`max_pending` queued records a predict waits for the writer (backpressure, never loss), so
a database that cannot keep up slows serving down instead of growing memory. Readers call `flush()` first, so a caller always sees its own
operations. `close()` lets the writer finish and writes what is left; an insert under way
is shielded from cancellation, so a clean shutdown loses none.

What a kill -9 loses: the records queued and not yet inserted, i.e. at most the last
`interval` (0.5 s) of predicts, more only while the database is behind (then at most
`max_pending` + one batch). This log is the seed's monitoring record, not an audit trail;
docs/mlconnector.md says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple

from ..store.protocols import ModelRegistry

log = logging.getLogger("mlagent.serving")


class Operation(NamedTuple):
    account: str
    ownerid: str
    deployment_id: str
    model_id: str
    data: Any  # the inputs (a float matrix, or prompts), encoded by the writer; None = not recorded ("")
    result: str | bytes  # the response JSON
    created_at: float


def _size(op: Operation) -> int:
    """Roughly the bytes the record will take (rows at ~11 bytes a value, rowcodec.py)."""
    d = op.data
    if d is None or not len(d):
        return len(op.result)
    if hasattr(d, "size"):  # a NumPy matrix (not imported here: a list of prompts has no .size)
        return len(op.result) + 11 * d.size
    if type(d[0]) is list:
        return len(op.result) + 11 * len(d) * len(d[0])
    return len(op.result) + sum(len(str(p)) for p in d)


def _encode(ops: list[Operation]) -> list[dict[str, Any]]:
    from . import rowcodec  # NumPy: imported by the writer's thread, not at start

    return [{**op._asdict(), "data": "" if op.data is None else rowcodec.encode(op.data),
             "result": op.result if isinstance(op.result, str) else op.result.decode()} for op in ops]


class OperationRecorder:
    def __init__(self, store: ModelRegistry, batch: int = 1000, interval: float = 0.5,
                 max_pending: int = 20_000, batch_bytes: int = 1 << 20) -> None:
        self.store = store
        self.batch = batch
        # An insert holds the database connection (SQLite's only one) while it runs: about 1 MB
        # at a time lets other statements in between.
        self.batch_bytes = batch_bytes
        self.interval = interval
        self.max_pending = max_pending
        self._pending: list[Operation] = []
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
        self._pending.append(Operation(account, ownerid, deployment_id, model_id, data, result, time.time()))
        if len(self._pending) >= self.batch:
            self._wake.set()

    async def flush(self) -> None:
        """Write what is queued now, in batches (not what arrives meanwhile: a reader would wait on)."""
        async with self._lock:
            left = len(self._pending)
            while left > 0:
                n, size = 0, 0
                while n < min(left, self.batch) and (n == 0 or size < self.batch_bytes):
                    size += _size(self._pending[n])
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

    async def _write(self, ops: list[Operation]) -> None:
        await self.store.add_operations(await asyncio.to_thread(_encode, ops))

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
