"""Event append through `TurnStore.append` vs the same SQL through bare aiosqlite, same run.

Each append is one transaction: the turn's UPDATE (snapshot, status, last seq) and the
INSERT of its events; 1 and 32 events per transaction. Median of 3 runs, interleaved.

Run: `PYTHONPATH=src:. .venv/bin/python -m bench.core_append`
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time

import aiosqlite

from bench.runtime_bench import _append_rate


async def _bare_rate(url: str, batch: int, n: int) -> float:
    """The same statements as `TurnStore.append`, written against the driver by hand."""
    from mlagent.store.db import migrate

    await migrate(url)
    path = url.split("///", 1)[1]
    async with aiosqlite.connect(path) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        now = time.time()
        await db.execute("INSERT INTO sessions (id, account, agent, model, max_cost_usd, spent_usd, messages, closed, "
                         "created_at, updated_at) VALUES ('s', 'b', 'a', 'm', 1, 0, '[]', 0, ?, ?)", (now, now))
        await db.execute("INSERT INTO turns (id, session_id, account, status, request, snapshot, last_seq, "
                         "cancel_requested, created_at, updated_at) VALUES ('r', 's', 'b', 'in_progress', '{}', '{}', "
                         "-1, 0, ?, ?)", (now, now))
        await db.commit()
        payload = json.dumps({"type": "response.output_text.delta", "delta": "token "})
        snapshot = json.dumps({"id": "r", "status": "in_progress", "output": []})
        started = time.perf_counter()
        seq = 0
        for _ in range(n // batch):
            rows = [("r", seq + i, "response.output_text.delta", payload, now) for i in range(batch)]
            await db.execute("UPDATE turns SET snapshot=?, status=?, last_seq=?, updated_at=? WHERE id=?",
                             (snapshot, "in_progress", rows[-1][1], now, "r"))
            await db.executemany("INSERT INTO events (response_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)",
                                 rows)
            await db.commit()
            seq += batch
        return seq / (time.perf_counter() - started)


def main() -> None:
    for batch in (1, 32):
        ours, bare = [], []
        for _ in range(3):
            n = 1000 if batch == 1 else 8000
            ours.append(asyncio.run(_append_rate(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/b.db", batch, n)))
            bare.append(asyncio.run(_bare_rate(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/b.db", batch, n)))
        o, b = statistics.median(ours), statistics.median(bare)
        print(f"batch={batch:<3d} TurnStore.append {o:8,.0f} events/s   bare aiosqlite {b:8,.0f} events/s   "
              f"ratio {o / b:.2f}")


if __name__ == "__main__":
    main()
