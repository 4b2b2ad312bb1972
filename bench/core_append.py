"""Event append through `TurnStore.append` vs the same SQL through the bare driver, same run.

Each append is one transaction: the turn's UPDATE (snapshot, status, last seq) and the
INSERT of its events; 1 and 32 events per transaction, awaited one after the other (the
live path: `append` goes through the group commit). The bare baselines are the same SQL by
hand through aiosqlite (the driver the goal names) and through `sqlite3` called on the
loop (what `store/sqlite_inline.py` runs). Median of 3 runs, interleaved.

Run: `PYTHONPATH=src:. .venv/bin/python -m bench.core_append`
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import statistics
import tempfile
import time

import aiosqlite


async def _append_rate(url: str, batch: int, n: int) -> tuple[float, float]:
    """`TurnStore.append` on the server's engine (`store.db.make_engine`)."""
    from mlagent.events.response import ResponseObject
    from mlagent.events.types import OutputTextDelta
    from mlagent.store.db import make_engine, migrate, sessionmaker
    from mlagent.store.records import SessionRecord, TurnRecord
    from mlagent.store.turns import TurnStore

    await migrate(url)
    engine = make_engine(url)
    store = TurnStore(sessionmaker(engine))
    now = time.time()
    snap = ResponseObject(id="r", created_at=int(now), model="m", session_id="s", max_cost_usd=1)
    snapshot = snap.model_dump(mode="json")
    await store.create(SessionRecord("s", "bench", "a", "m", 1, 0, [], None, False, now, now),
                       TurnRecord("r", "s", "bench", "in_progress", {}, snapshot, -1, False, None, None, None,
                                  now, now), [])
    payload = OutputTextDelta(item_id="msg_x", output_index=0, content_index=0, delta="token ").model_dump_json()
    started, cpu = time.perf_counter(), time.process_time()
    seq = 0
    for _ in range(n // batch):
        await store.append("r", [(seq + i, "response.output_text.delta", payload) for i in range(batch)], snapshot,
                           "in_progress")
        seq += batch
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await engine.dispose()
    return seq / elapsed, seq / cpu


async def _sqlite3_rate(url: str, batch: int, n: int) -> tuple[float, float]:
    """The same SQL through `sqlite3`, called on the event loop like `store/sqlite_inline.py`."""
    from mlagent.store.db import migrate

    await migrate(url)
    db = sqlite3.connect(url.split("///", 1)[1])
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    now = time.time()
    db.execute(_SESSION, (now, now))
    db.execute(_TURN, (now, now))
    db.commit()
    payload, snapshot = _payloads()
    started, cpu = time.perf_counter(), time.process_time()
    seq = 0
    for _ in range(n // batch):
        rows = [("r", seq + i, "response.output_text.delta", payload, now) for i in range(batch)]
        db.execute(_UPDATE, (snapshot, "in_progress", rows[-1][1], now, "r"))
        db.executemany(_INSERT, rows)
        db.commit()
        seq += batch
        await asyncio.sleep(0)  # a coroutine among others, as on the server
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    db.close()
    return seq / elapsed, seq / cpu


_SESSION = ("INSERT INTO sessions (id, account, agent, model, max_cost_usd, spent_usd, messages, closed, "
            "created_at, updated_at) VALUES ('s', 'b', 'a', 'm', 1, 0, '[]', 0, ?, ?)")
_TURN = ("INSERT INTO turns (id, session_id, account, status, request, snapshot, last_seq, cancel_requested, "
         "created_at, updated_at) VALUES ('r', 's', 'b', 'in_progress', '{}', '{}', -1, 0, ?, ?)")
_UPDATE = "UPDATE turns SET snapshot=?, status=?, last_seq=?, updated_at=? WHERE id=?"
_INSERT = "INSERT INTO events (response_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)"


def _payloads() -> tuple[str, str]:
    from mlagent.events.response import ResponseObject
    from mlagent.events.types import OutputTextDelta

    payload = OutputTextDelta(item_id="msg_x", output_index=0, content_index=0, delta="token ").model_dump_json()
    snap = ResponseObject(id="r", created_at=0, model="m", session_id="s", max_cost_usd=1)
    return payload, snap.model_dump_json()


async def _bare_rate(url: str, batch: int, n: int) -> tuple[float, float]:
    """The same statements as `TurnStore.append`, written against the driver by hand."""
    from mlagent.store.db import migrate

    await migrate(url)
    path = url.split("///", 1)[1]
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        now = time.time()
        await db.execute(_SESSION, (now, now))
        await db.execute(_TURN, (now, now))
        await db.commit()
        payload, snapshot = _payloads()
        started, cpu = time.perf_counter(), time.process_time()
        seq = 0
        for _ in range(n // batch):
            rows = [("r", seq + i, "response.output_text.delta", payload, now) for i in range(batch)]
            await db.execute(_UPDATE, (snapshot, "in_progress", rows[-1][1], now, "r"))
            await db.executemany(_INSERT, rows)
            await db.commit()
            seq += batch
        return seq / (time.perf_counter() - started), seq / (time.process_time() - cpu)


def main() -> None:
    """Events per second of wall time and per CPU-second of this process (all its threads:
    aiosqlite's included); the CPU figure is the steadier one on a shared machine."""
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for batch in (1, 32):
        runs: dict[str, list[tuple[float, float]]] = {"ours": [], "aiosqlite": [], "sqlite3": []}
        for _ in range(3):
            n = 2000 if batch == 1 else 16000
            for name, rate in (("ours", _append_rate), ("aiosqlite", _bare_rate), ("sqlite3", _sqlite3_rate)):
                runs[name].append(asyncio.run(rate(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/b.db", batch, n)))
        wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
        print(f"batch={batch:<3d} events/s (wall | per CPU-s): TurnStore.append {wall['ours']:7,.0f} | {cpu['ours']:7,.0f}"
              f"   bare aiosqlite {wall['aiosqlite']:7,.0f} | {cpu['aiosqlite']:7,.0f}"
              f" ({wall['ours'] / wall['aiosqlite']:.2f}x | {cpu['ours'] / cpu['aiosqlite']:.2f}x)"
              f"   bare sqlite3 on the loop {wall['sqlite3']:7,.0f} | {cpu['sqlite3']:7,.0f}"
              f" ({wall['ours'] / wall['sqlite3']:.2f}x | {cpu['ours'] / cpu['sqlite3']:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
