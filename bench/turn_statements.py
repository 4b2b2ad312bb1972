"""SQL statements one `POST /v1/responses` runs before it answers (the turn's creation),
counted with a SQLAlchemy `before_cursor_execute` listener, plus its COMMITs (a transaction's
BEGIN is not a statement the listener sees). Only statements issued by the
request's own task are counted: the turn's worker task (which starts at once) is not.

Run: `.venv/bin/python -m bench.turn_statements` (MLAGENT_TEST_DATABASE_URL adds PostgreSQL).
The count is deterministic; it is the figure to compare, not a timing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM, Reply
from tests.harness import create_pg_database, drop_pg_database

ROUNDS = 3  # first turn of a new account, then later new sessions and follow-ups


class Counter:
    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.statements: list[str] = []
        event.listen(Engine, "before_cursor_execute", self._seen)
        event.listen(Engine, "commit", lambda conn: self._seen(None, None, "COMMIT", None, None, False))

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        try:
            current = asyncio.current_task()
        except RuntimeError:
            current = None
        if self.task is not None and current is self.task:
            self.statements.append(" ".join(statement.split())[:90])

    def start(self) -> None:
        self.task, self.statements = asyncio.current_task(), []

    def stop(self) -> list[str]:
        self.task = None
        return self.statements


async def measure(database_url: str | None, data_dir: Path, hub: FakeHub, llm: FakeLLM, verbose: bool) -> dict:
    from mlagent.config import Settings
    from mlagent.server import create_app

    env = {"data_dir": data_dir, "hf_endpoint": hub.url, "inference_base_url": llm.url, "grpc_port": 0}
    if database_url:
        env["database_url"] = database_url
    app = create_app(Settings(**env))
    counter = Counter()
    token = hub.user_token("bench")
    figures: dict[str, list[int]] = {"new session (first of the account)": [], "new session": [], "follow-up": []}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     headers={"Authorization": f"Bearer {token}"}) as c:
            for i in range(ROUNDS):
                llm.push(Reply(text="ok"), Reply(text="ok"))
                counter.start()
                r = await c.post("/v1/responses", json={"input": "hi", "background": True})
                stmts = counter.stop()
                assert r.status_code == 200, r.text
                figures["new session (first of the account)" if i == 0 else "new session"].append(len(stmts))
                if verbose:
                    print(f"  new session: {len(stmts)}", *stmts, sep="\n    ")
                first = r.json()["id"]
                while (await c.get(f"/v1/responses/{first}")).json()["status"] not in ("completed", "failed"):
                    await asyncio.sleep(0.02)
                counter.start()
                r = await c.post("/v1/responses", json={"input": "more", "background": True,
                                                         "previous_response_id": first})
                stmts = counter.stop()
                assert r.status_code == 200, r.text
                figures["follow-up"].append(len(stmts))
                if verbose:
                    print(f"  follow-up: {len(stmts)}", *stmts, sep="\n    ")
                nxt = r.json()["id"]
                while (await c.get(f"/v1/responses/{nxt}")).json()["status"] not in ("completed", "failed"):
                    await asyncio.sleep(0.02)
    return figures


def main() -> None:
    verbose = "-v" in sys.argv
    hub, llm = FakeHub().start(), FakeLLM().start()
    databases: dict[str, str | None] = {"sqlite": None}
    pg = os.environ.get("MLAGENT_TEST_DATABASE_URL")
    if pg:
        databases["postgresql"] = create_pg_database(pg)
    try:
        print("## SQL statements per POST /v1/responses (the request's own task; the worker excluded)")
        for name, url in databases.items():
            with tempfile.TemporaryDirectory() as tmp:
                print(f"\n{name}:")
                figures = asyncio.run(measure(url, Path(tmp), hub, llm, verbose))
                for kind, counts in figures.items():
                    print(f"  {kind}: {counts}")
    finally:
        if pg:
            drop_pg_database(pg, databases["postgresql"])
        hub.stop()
        llm.stop()


if __name__ == "__main__":
    main()
