"""PostgreSQL under pressure, through the real server: a pool too small for the load and
connections the database drops. A request that cannot get the database answers 503 with
Retry-After in the API's envelope (never a 500) and a retry with the same Idempotency-Key
loses nothing; every turn ends (completed, or failed cleanly with its stream ended), none
is left queued or running by a worker task that died; a stream is never cut."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import PG_SKIP, PG_URL
from .fakes.llm import Reply
from .harness import iter_sse, pg_admin_url

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)

CLIENTS = 48
TERMINAL = {"completed", "failed", "cancelled", "incomplete"}


def check_503(r: httpx.Response) -> None:
    """The answer to a request the database could not serve now: OpenAI's envelope, retryable."""
    assert r.status_code == 503, (r.status_code, r.text)
    assert int(r.headers["retry-after"]) >= 1
    error = r.json()["error"]
    assert error["code"] == "database_unavailable" and error["type"] == "server_error", error


def until_served(send, seen: list[int], attempts: int = 200) -> httpx.Response:
    """Send until the answer is not a 503 (each 503 checked and counted)."""
    for _ in range(attempts):
        r = send()
        seen.append(r.status_code)
        if r.status_code != 503:
            return r
        check_503(r)
        time.sleep(int(r.headers["retry-after"]))  # as a client should
    raise AssertionError("never served")


def one_client(server, token: str, i: int, seen: list[int]) -> tuple[str, list[str]]:
    """Create a response (streamed for even `i`), retrying 503s with the same key; return
    its id and, for a stream, the event types it got to the end."""
    body: dict[str, Any] = {"input": f"hello {i}"} | ({"stream": True} if i % 2 == 0 else {"background": True})
    headers = {"Idempotency-Key": f"key-{i}"}
    with server.client(token) as c:
        if i % 2:
            r = until_served(lambda: c.post("/v1/responses", json=body, headers=headers), seen)
            assert r.status_code == 200, r.text
            return r.json()["id"], []
        for _ in range(200):
            with c.stream("POST", "/v1/responses", json=body, headers=headers) as r:
                seen.append(r.status_code)
                if r.status_code == 503:
                    r.read()
                    check_503(r)
                    time.sleep(int(r.headers["retry-after"]))
                    continue
                assert r.status_code == 200, r.read()
                events = [e.json() for e in iter_sse(r)]
                return events[0]["response"]["id"], [e["type"] for e in events]
    raise AssertionError("never served")


def test_a_pool_too_small_answers_503_and_leaves_no_turn_behind(make_server, fake_hub, fake_llm):
    # One connection, and 10 ms to get it: most of 48 clients at once must wait longer.
    server = make_server("postgresql", mlagent_db_pool_size="1", mlagent_db_max_overflow="0",
                         mlagent_db_pool_timeout_seconds="0.01", mlagent_max_sessions_per_account="1000",
                         mlagent_max_sessions_global="1000").start()
    fake_llm.default = Reply(text="one two three four five six", chunks=6, chunk_delay=0.01)
    token = fake_hub.user_token("pressure")
    seen: list[int] = []
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda i: one_client(server, token, i, seen), range(CLIENTS)))
    assert set(seen) <= {200, 503}, sorted(set(seen))  # never a 500
    assert 503 in seen  # the pool was too small: the test exercised what it is about
    ids = [rid for rid, _ in results]
    assert len(set(ids)) == CLIENTS  # one response per client, however many retries
    for rid, types in results:
        if types:  # a stream is never cut: it ends with its response's end
            assert types[-1] in ("response.completed", "response.failed"), (rid, types[-3:])
    finals: dict[str, dict[str, Any]] = {}
    with server.client(token) as c:
        deadline = time.monotonic() + 180
        for rid in ids:
            while True:
                body = until_served(lambda rid=rid: c.get(f"/v1/responses/{rid}"), seen).json()
                if body["status"] in TERMINAL or time.monotonic() > deadline:
                    finals[rid] = body
                    break
                time.sleep(0.2)
    stuck = {rid: b["status"] for rid, b in finals.items() if b["status"] not in TERMINAL}
    assert not stuck, stuck  # no turn left queued or running
    for body in finals.values():
        assert body["status"] in ("completed", "failed"), body
        if body["status"] == "failed":  # failed cleanly, saying why
            assert body["error"]["code"] == "server_error", body["error"]
    log = server.log()
    assert "Task exception was never retrieved" not in log
    assert "unhandled error" not in log


def pool_backends(database_url: str) -> int:
    """Terminate the server's pooled connections (not its LISTEN one); how many there were."""
    import asyncpg

    name = database_url.rsplit("/", 1)[1]

    async def go() -> int:
        conn = await asyncpg.connect(pg_admin_url(database_url))
        try:
            rows = await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 "
                                    "AND application_name <> 'mlagent-listen' AND pid <> pg_backend_pid()", name)
            return len(rows)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_connections_the_database_dropped_cost_a_503_at_most(make_server, fake_hub, fake_llm):
    # No pre-ping (the default): a dropped connection fails its statement, which a request
    # answers as 503 and the worker retries; the pool then replaces its connections.
    server = make_server("postgresql").start()
    token = fake_hub.user_token("dropped")
    seen: list[int] = []
    with server.client(token) as c:
        first = c.post("/v1/responses", json={"input": "hi", "background": True}).json()["id"]
        deadline = time.monotonic() + 30
        while c.get(f"/v1/responses/{first}").json()["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        # Reads that go to the database (a finished response itself is answered from memory).
        items = f"/v1/responses/{first}/input_items"
        for _ in range(4):  # fill the pool with several connections, then drop them all
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: c.get(items), range(16)))
        assert pool_backends(server.env["MLAGENT_DATABASE_URL"]) >= 1
        for _ in range(6):
            r = until_served(lambda: c.get(items), seen)
            assert r.status_code == 200 and r.json()["data"], r.text
        assert pool_backends(server.env["MLAGENT_DATABASE_URL"]) >= 1
        fake_llm.default = Reply(text="after the drop", chunks=3)
        r = until_served(lambda: c.post("/v1/responses", json={"input": "again", "background": True},
                                        headers={"Idempotency-Key": "after-drop"}), seen)
        assert r.status_code == 200, r.text
        rid = r.json()["id"]
        deadline = time.monotonic() + 60
        while (status := until_served(lambda: c.get(f"/v1/responses/{rid}"), seen).json()["status"]) not in TERMINAL \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == "completed"
    assert set(seen) <= {200, 503}, sorted(set(seen))
    assert "unhandled error" not in server.log()
