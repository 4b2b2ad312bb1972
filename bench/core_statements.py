"""Database round trips of one trivial agent run, counted on the real app.

The app runs in this process (uvicorn on a loopback port, fake Hub and LLM on theirs), so a
SQLAlchemy `before_cursor_execute` listener sees every statement. One warm-up run, then
one synchronous `POST /v1/responses` whose LLM answers at once; statements, commits and
connection checkouts are counted from the request until the turn's worker let go.

Run: `.venv/bin/python -m bench.core_statements [-v] [--where=SQL-substring]` (-v: per statement shape;
--where: who issues the matching statements; MLAGENT_TEST_DATABASE_URL: PostgreSQL too).
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from mlagent.store.direct import DirectConnection
from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM
from tests.fakes.serve import free_port
from tests.harness import create_pg_database, drop_pg_database


class Counter:
    def __init__(self) -> None:
        self.on = False
        self.statements: collections.Counter[str] = collections.Counter()
        self.commits = 0
        self.checkouts = 0
        self.where = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--where=")), None)

    def install(self) -> None:
        @event.listens_for(Engine, "before_cursor_execute")
        def _stmt(_conn, _cursor, statement, *_a) -> None:
            if self.on:
                self.count(statement)

        # SQLite's hot statements skip SQLAlchemy's execution (store/direct.py): counted
        # where they run, an executemany once, as above.
        run = DirectConnection._run

        async def _direct(conn, method, stmt, params):
            if self.on:
                self.count(stmt.sql)
            return await run(conn, method, stmt, params)

        DirectConnection._run = _direct  # type: ignore[method-assign]

        @event.listens_for(Engine, "commit")
        def _commit(_conn) -> None:
            if self.on:
                self.commits += 1

        @event.listens_for(Pool, "checkout")
        def _checkout(*_a) -> None:
            if self.on:
                self.checkouts += 1

    def count(self, statement: str) -> None:
        self.statements[_shape(statement)] += 1
        if self.where and self.where in statement:
            print("  --", _shape(statement), "from", _callers())


def _callers() -> str:
    """The mlagent frames of the current (greenlet-bridged) stack, innermost last."""
    import traceback

    frames = [f for f in traceback.extract_stack() if "/mlagent/" in f.filename]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames[-4:]))


def _shape(sql: str) -> str:
    sql = " ".join(sql.split())
    m = re.match(r"(SELECT .*? FROM \S+|INSERT INTO \S+|UPDATE \S+|DELETE FROM \S+|\S+ ?\S*)", sql)
    return (m.group(1) if m else sql)[:90]


async def one_run(url: str, counter: Counter, verbose: bool) -> None:
    from mlagent.config import Settings
    from mlagent.server import create_app

    hub, llm = FakeHub().start(), FakeLLM().start()
    data = Path(tempfile.mkdtemp())
    settings = Settings(data_dir=data, database_url=url, hf_endpoint=hub.url, inference_base_url=llm.url,
                        grpc_port=0, log_level="warning")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    token = hub.user_token("bench")
    runner = server.config.loaded_app  # noqa: F841 - kept for debugging
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                                 timeout=30) as c:
        for i in range(2):  # a warm-up run: caches, the account's first sight, connections
            counter.on = i == 1
            t = time.perf_counter()
            r = await c.post("/v1/responses", json={"input": "hi"})
            elapsed = (time.perf_counter() - t) * 1000
            assert r.json()["status"] == "completed", r.text
            await asyncio.sleep(0.3)  # the worker's last writes after the answer
        counter.on = False
    server.should_exit = True
    await task
    hub.stop()
    llm.stop()
    total = sum(counter.statements.values())
    print(f"{url.split(':')[0]:24s} statements {total:3d}  commits {counter.commits:3d}  checkouts "
          f"{counter.checkouts:3d}  (request {elapsed:.0f} ms)")
    if verbose:
        for shape, n in counter.statements.most_common():
            print(f"   {n:3d}  {shape}")


def main() -> None:
    verbose = "-v" in sys.argv
    urls = [(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db", None)]
    pg = os.environ.get("MLAGENT_TEST_DATABASE_URL")
    if pg:
        urls.append((create_pg_database(pg), pg))
    for url, admin in urls:
        counter = Counter()
        counter.install()
        try:
            asyncio.run(one_run(url, counter, verbose))
        finally:
            if admin:
                drop_pg_database(admin, url)


if __name__ == "__main__":
    main()
