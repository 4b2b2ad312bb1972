"""What `pool_pre_ping` costs a PostgreSQL checkout: the server's hot read (a connection
from the pool, one primary-key SELECT, back to the pool) with the ping on and off,
interleaved, in this process (its CPU per read from /proc via `time.process_time`).

    MLAGENT_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
      PYTHONPATH=src:. python -m bench.pg_pool [--reads=2000] [--concurrency=16] [--rounds=5]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time

from sqlalchemy import text

from mlagent.store.db import PoolSettings, make_engine

READ = text("SELECT last_seq FROM bench_pool WHERE id = :id")


async def measure(url: str, pre_ping: bool, reads: int, concurrency: int) -> tuple[float, float]:
    """(wall µs per read, CPU µs per read) for `reads` reads by `concurrency` tasks."""
    engine = make_engine(url, PoolSettings(size=concurrency, max_overflow=0, pre_ping=pre_ping))
    try:
        async with engine.begin() as conn:  # the pool's connections opened before timing
            await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_pool (id text PRIMARY KEY, last_seq int)"))
            await conn.execute(text("INSERT INTO bench_pool VALUES ('r', 1) ON CONFLICT DO NOTHING"))

        async def warm() -> None:
            async with engine.connect() as conn:
                await conn.execute(READ, {"id": "r"})
                await asyncio.sleep(0.01)

        await asyncio.gather(*(warm() for _ in range(concurrency)))

        async def worker(n: int) -> None:
            for _ in range(n):
                async with engine.connect() as conn:
                    await conn.execute(READ, {"id": "r"})

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(reads // concurrency) for _ in range(concurrency)))
        done = reads // concurrency * concurrency
        return ((time.perf_counter() - wall) * 1e6 / done, (time.process_time() - cpu) * 1e6 / done)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> None:
    opts = dict(a.removeprefix("--").split("=", 1) for a in argv if "=" in a)
    reads, conc, rounds = int(opts.get("reads", 2000)), int(opts.get("concurrency", 16)), int(opts.get("rounds", 5))
    from tests.harness import create_pg_database, drop_pg_database

    base = os.environ["MLAGENT_TEST_DATABASE_URL"]
    url = create_pg_database(base)
    try:
        results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(rounds):
            for ping in (True, False):
                results[ping].append(asyncio.run(measure(url, ping, reads, conc)))
    finally:
        drop_pg_database(base, url)
    load = os.getloadavg()
    print(f"{reads} reads, {conc} concurrent, {rounds} interleaved rounds (load {load[0]:.1f} {load[1]:.1f})")
    for ping in (True, False):
        wall = statistics.median(r[0] for r in results[ping])
        cpu = statistics.median(r[1] for r in results[ping])
        print(f"pre_ping={ping!s:5}: {wall:7.0f} µs per read (wall), {cpu:6.0f} CPU-µs per read "
              f"(min–max wall {min(r[0] for r in results[ping]):.0f}–{max(r[0] for r in results[ping]):.0f})")
    on, off = (statistics.median(r[1] for r in results[p]) for p in (True, False))
    print(f"CPU per read: pre_ping costs {on / off:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
