"""Event append through the real path vs the same SQL through the bare driver.

mlagent: `EventWriter.emit` of text deltas into a `TurnStore` on an engine from
`store.db.make_engine` (the server's own construction, PostgreSQL with its NOTIFY), flushed
after every event (1 per transaction) or every 32 (as a streaming answer batches them).
Baseline: the statements that append issues — UPDATE the turn's projection, INSERT the
events, COMMIT — through bare aiosqlite (same PRAGMAs) or asyncpg (with the same
pg_notify), on a database migrated the same way, with the same payload sizes.

Both run in this process, one after the other, interleaved over several runs, each on a
fresh database: events/s (median, min–max), this process's CPU time per event (all threads,
the steadier figure on a shared machine: under load every hop to the driver's thread waits
for a core), and the measured events per transaction.

    python -m bench.event_append [--quick]      (MLAGENT_TEST_DATABASE_URL adds PostgreSQL)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from .procs import Figure, interleave, print_table, quick_flag

SNAPSHOT_SQL = "UPDATE turns SET snapshot=?, status=?, last_seq=?, updated_at=? WHERE turns.id = ?"
EVENT_SQL = "INSERT INTO events (response_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)"


async def _new_turn(url: str) -> tuple[object, object, str, object]:
    """A migrated database holding one session and one in-progress turn, as the runtime creates them."""
    from mlagent.events.response import ResponseObject
    from mlagent.runtime.ids import new_id
    from mlagent.store.db import make_engine, migrate, sessionmaker
    from mlagent.store.notify import EventNotifier
    from mlagent.store.records import SessionRecord, TurnRecord
    from mlagent.store.turns import TurnStore

    await migrate(url)
    engine = make_engine(url)
    store = TurnStore(sessionmaker(engine), EventNotifier("bench") if url.startswith("postgresql") else None)
    now = time.time()
    sid, rid = new_id("sess"), new_id("resp")
    snap = ResponseObject(id=rid, created_at=int(now), model="m", session_id=sid, max_cost_usd=1, status="in_progress")
    await store.create(SessionRecord(id=sid, account="bench", agent="a", model="m", max_cost_usd=1, spent_usd=0,
                                     messages=[], pending=None, closed=False, created_at=now, updated_at=now),
                       TurnRecord(id=rid, session_id=sid, account="bench", status="in_progress", request={},
                                  snapshot=snap.model_dump(mode="json"), last_seq=-1, cancel_requested=False,
                                  lease_owner=None, lease_expires_at=None, idempotency_key=None,
                                  created_at=now, updated_at=now), [])
    return engine, store, rid, snap


async def ours(url: str, batch: int, n: int) -> tuple[float, float, float]:
    """(events/s, events per transaction, CPU-µs per event of this process) through EventWriter → TurnStore.append."""
    from mlagent.events.bus import EventBus
    from mlagent.events.response import MessageItem, OutputText
    from mlagent.events.types import ContentPartAdded, OutputItemAdded, OutputTextDelta
    from mlagent.runtime.writer import EventWriter

    engine, store, rid, snap = await _new_turn(url)
    writer = EventWriter(store, EventBus(), rid, snap, -1)
    await writer.emit(OutputItemAdded(output_index=0, item=MessageItem(id="msg_bench")))
    await writer.emit(ContentPartAdded(item_id="msg_bench", output_index=0, content_index=0, part=OutputText()))
    transactions = 0
    append = store.append

    async def counted(*args, **kw):
        nonlocal transactions
        transactions += 1
        return await append(*args, **kw)

    store.append = counted  # count the transactions the writer really made
    started, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(n // batch):
        for _ in range(batch):
            await writer.emit(OutputTextDelta(item_id="msg_bench", output_index=0, content_index=0, delta="token "))
        await writer.flush()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    await engine.dispose()
    return n / elapsed, n / transactions, cpu / n * 1e6


def _payloads(rid: str, snap) -> tuple[str, dict]:
    from mlagent.events.types import OutputTextDelta

    payload = OutputTextDelta(item_id="msg_bench", output_index=0, content_index=0, delta="token ",
                              sequence_number=0).model_dump_json()
    return payload, snap.model_dump(mode="json")


def _transactions(rid: str, payload: str, snapshot: dict, batch: int, n: int):
    """Per transaction: the projection's JSON (grown as the real one grows), the last seq, the
    time, and the event rows — the parameters of the statements `TurnStore.append` issues."""
    text = ""
    for seq in range(0, n - n % batch, batch):
        now = time.time()
        text += "token " * batch
        snapshot["output_text"] = text
        yield (json.dumps(snapshot), seq + batch - 1, now,
               [(rid, seq + i, "response.output_text.delta", payload, now) for i in range(batch)])


async def bare_sqlite(url: str, batch: int, n: int) -> tuple[float, float, float]:
    import aiosqlite

    engine, _, rid, snap = await _new_turn(url)
    await engine.dispose()
    payload, snapshot = _payloads(rid, snap)
    async with aiosqlite.connect(url.split("///", 1)[1]) as db:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
            await db.execute(f"PRAGMA {pragma}")
        started, cpu0 = time.perf_counter(), time.process_time()
        for snapshot_json, last_seq, now, rows in _transactions(rid, payload, snapshot, batch, n):
            await db.execute(SNAPSHOT_SQL, (snapshot_json, "in_progress", last_seq, now, rid))
            await db.executemany(EVENT_SQL, rows)
            await db.commit()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    return n / elapsed, float(batch), cpu / n * 1e6


async def bare_asyncpg(url: str, batch: int, n: int) -> tuple[float, float, float]:
    import asyncpg

    from tests.harness import pg_admin_url

    engine, _, rid, snap = await _new_turn(url)
    await engine.dispose()
    payload, snapshot = _payloads(rid, snap)
    conn = await asyncpg.connect(pg_admin_url(url))
    try:
        update = "UPDATE turns SET snapshot=$1::json, status=$2, last_seq=$3, updated_at=$4 WHERE turns.id = $5"
        insert = "INSERT INTO events (response_id, seq, type, data, created_at) VALUES ($1, $2, $3, $4, $5)"
        started, cpu0 = time.perf_counter(), time.process_time()
        for snapshot_json, last_seq, now, rows in _transactions(rid, payload, snapshot, batch, n):
            async with conn.transaction():
                await conn.execute(update, snapshot_json, "in_progress", last_seq, now, rid)
                await conn.executemany(insert, rows)
                await conn.execute("SELECT pg_notify($1, $2)", "mlagent_events", f"bench {rid} {last_seq}")
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    finally:
        await conn.close()
    return n / elapsed, float(batch), cpu / n * 1e6


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    runs, n1, n32 = (2, 200, 1600) if quick_flag(argv) else (5, 500, 8000)
    pg = os.environ.get("MLAGENT_TEST_DATABASE_URL")
    databases: dict[str, tuple[Callable[[], tuple[str, Callable[[], None]]], Callable[..., Awaitable]]] = {}

    def sqlite_url() -> tuple[str, Callable[[], None]]:
        return f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-append-')}/bench.db", lambda: None

    databases["SQLite"] = (sqlite_url, bare_sqlite)
    if pg:
        from tests.harness import create_pg_database, drop_pg_database

        def pg_url() -> tuple[str, Callable[[], None]]:
            url = create_pg_database(pg)
            return url, lambda: drop_pg_database(pg, url)

        databases["PostgreSQL"] = (pg_url, bare_asyncpg)
    rows = []
    for name, (make_url, bare) in databases.items():
        for batch, n in ((1, n1), (32, n32)):
            rate = Figure(f"{name}, {batch} per transaction", "events/s")
            per_txn = Figure(f"{name}, {batch} per transaction: events per transaction", "events")
            cpu = Figure(f"{name}, {batch} per transaction: client CPU per event", "CPU-µs", higher_is_better=False)

            def side(fn, into: str, batch=batch, n=n, rate=rate, per_txn=per_txn, cpu=cpu,
                     make_url=make_url) -> Callable[[], None]:
                def run() -> None:
                    url, cleanup = make_url()
                    try:
                        r, t, c = asyncio.run(fn(url, batch, n))
                    finally:
                        cleanup()
                    getattr(rate, into).append(r)
                    getattr(per_txn, into).append(t)
                    getattr(cpu, into).append(c)
                return run

            interleave(runs, side(ours, "ours"), side(bare, "base"))
            rows += [rate, cpu, per_txn]
    print_table(f"event append: EventWriter → TurnStore vs the same SQL through the bare driver "
                f"({runs} interleaved runs; {n1} / {n32} events)", rows, "bare driver")


if __name__ == "__main__":
    main()
