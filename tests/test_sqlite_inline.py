"""SQLite's calls run on the event loop (store/sqlite_inline.py), so the ways they could
stall it are handled off the loop: a write lock held by another process, checkpoints, and
bulk writes."""

import asyncio
import sqlite3
import threading

import httpx

from mlagent.store import sqlite_inline
from mlagent.store.db import make_engine, migrate

from .fakes.llm import Reply
from .harness import wait_status


def test_a_lock_held_elsewhere_waits_off_the_loop(make_server, fake_hub, fake_llm):
    """Another process holds the database's write lock: a create waits for it (it does not
    fail with "database is locked"), and meanwhile the server keeps answering."""
    server = make_server("sqlite").start()
    token = fake_hub.user_token("lena")
    fake_llm.push(Reply(text="after the lock"))
    other = sqlite3.connect(server.data_dir / "mlagent.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write lock, as `mlagent migrate` or a backup would hold it
    created: list[httpx.Response] = []
    with server.client(token) as c:
        poster = threading.Thread(target=lambda: created.append(
            c.post("/v1/responses", json={"input": "hi", "background": True})))
        poster.start()
        try:
            # The create is blocked on the lock; the loop is not: these answer while it waits.
            for _ in range(3):
                assert c.get("/healthz", timeout=20).status_code == 200
            assert poster.is_alive()  # still waiting for the lock, not failed
        finally:
            other.rollback()
            other.close()
        poster.join(60)
        assert created and created[0].status_code == 200, created and created[0].text
        body = wait_status(c, created[0].json()["id"], {"completed"})
        assert body["output"][-1]["content"][0]["text"] == "after the lock"


def test_commits_checkpoint_the_wal_into_the_database(tmp_path, monkeypatch):
    """SQLite's own checkpoint is off on the loop's connection; every CHECKPOINT_COMMITS
    commits one runs on a worker thread, so the database file takes the WAL's pages."""
    monkeypatch.setattr(sqlite_inline, "CHECKPOINT_COMMITS", 3)
    path = tmp_path / "c.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def run() -> list[int]:
        await migrate(url)
        engine = make_engine(url)
        sizes = []
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql("CREATE TABLE blobs (b BLOB)")
            sizes.append(path.stat().st_size)
            for _ in range(2):  # commits 2 and 3 of the connection
                async with engine.begin() as conn:
                    await conn.exec_driver_sql("INSERT INTO blobs VALUES (zeroblob(200000))")
                sizes.append(path.stat().st_size)
        finally:
            await engine.dispose()
        return sizes

    before, after_second, after_third = asyncio.run(run())
    assert after_second == before  # written to the WAL only: no checkpoint ran inside a commit
    assert after_third > before + 200_000  # the third commit checkpointed both blobs into the file


def test_a_bulk_write_runs_off_the_loop(tmp_path):
    """An executemany of more than BULK_ROWS rows (a group commit of many turns' events: ~14 ms
    of SQLite's work for 1,000 rows) runs on a worker thread; a small one on the loop's own thread."""
    async def run() -> tuple[set[int], set[int], int]:
        conn = await sqlite_inline.connect(str(tmp_path / "b.db"))
        try:
            conn._conn.create_function("thread", 1, lambda _: threading.get_ident())
            await conn.execute("CREATE TABLE t (small INTEGER, tid INTEGER)")
            cursor = conn.cursor()
            await cursor.executemany("INSERT INTO t VALUES (1, thread(?))", [(i,) for i in range(8)])
            await cursor.executemany("INSERT INTO t VALUES (0, thread(?))",
                                     [(i,) for i in range(sqlite_inline.BULK_ROWS + 1)])
            await conn.commit()
            rows = await (await conn.execute("SELECT small, tid FROM t")).fetchall()
        finally:
            await conn.close()
        return ({tid for small, tid in rows if small}, {tid for small, tid in rows if not small},
                threading.get_ident())

    small, bulk, loop_thread = asyncio.run(run())
    assert small == {loop_thread}
    assert len(bulk) == 1 and loop_thread not in bulk
