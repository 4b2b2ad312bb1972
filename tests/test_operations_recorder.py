"""The operations log's writer (serving/operations.py) against a store that records what it is
given: every queued record is written once, in order, in small slices, and whatever else
the event loop has to do runs between two slices (a predict never waits for a whole batch)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from mlagent.serving import rowcodec
from mlagent.serving.operations import OperationRecorder


class Store:
    """`add_operations` as SQLite's inline connection runs it: without suspending."""

    def __init__(self, ticks: list[int]) -> None:
        self.slices: list[list[dict[str, Any]]] = []
        self.ticks_at: list[int] = []
        self._ticks = ticks

    async def add_operations(self, rows: list[dict[str, Any]]) -> None:
        self.slices.append(list(rows))
        self.ticks_at.append(self._ticks[0])


async def test_a_flush_writes_every_record_once_in_order_in_slices_with_the_loop_turning_between():
    ticks = [0]
    store = Store(ticks)
    recorder = OperationRecorder(store, slice_rows=64, slice_bytes=4096)
    x = np.arange(10.0).reshape(1, 10)
    for i in range(300):
        await recorder.add("acct", "owner", "dep", "model", x if i % 2 else None, f'{{"prediction":[{i}]}}')
    big = np.ones((100, 10))  # ~10.7 KB: a slice of its own
    await recorder.add("acct", "owner", "dep", "model", big, b'{"prediction":[1]}')

    async def ticker() -> None:  # stands for the requests the loop serves meanwhile
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    await recorder.flush()
    task.cancel()

    rows = [r for s in store.slices for r in s]
    assert [r["result"] for r in rows[:300]] == [f'{{"prediction":[{i}]}}' for i in range(300)]
    assert rows[1]["data"] == rowcodec.encode(x) and rows[0]["data"] == ""  # encoded when queued
    assert rowcodec.matrix(rows[300]["data"]).tolist() == big.tolist()
    assert rows[300]["result"] == '{"prediction":[1]}'
    assert all(len(s) <= 64 for s in store.slices)
    assert all(len(s) == 1 or sum(len(r["data"]) + len(r["result"]) for r in s[:-1]) < 4096 for s in store.slices)
    assert len(store.slices) >= 5
    # The loop turned between every two slices.
    assert all(b > a for a, b in zip(store.ticks_at, store.ticks_at[1:], strict=False))
    assert recorder._pending == []


async def test_a_failed_slice_keeps_its_records_for_the_next_flush():
    class Failing(Store):
        fail = True

        async def add_operations(self, rows: list[dict[str, Any]]) -> None:
            if self.fail and self.slices:
                self.fail = False
                raise OSError("disk full")
            await super().add_operations(rows)

    store = Failing([0])
    recorder = OperationRecorder(store, slice_rows=10)
    for i in range(25):
        await recorder.add("acct", "owner", "dep", "model", None, str(i))
    try:
        await recorder.flush()
    except OSError:
        pass
    else:
        raise AssertionError("the failure must reach the writer, which retries")
    await recorder.flush()
    assert [r["result"] for s in store.slices for r in s] == [str(i) for i in range(25)]
