"""Two server processes on one PostgreSQL database: a finished response kept in replica A's
memory (runtime/finished.py) is not served once it is deleted, whether the delete is made
on replica B (A hears its NOTIFY) or while A's listener connection is lost (A kept nothing
from before it knew it was deaf)."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import PG_SKIP, PG_URL
from .fakes.llm import Reply
from .harness import pg_admin_url
from .test_live_tail_replicas import listener_pids, two_replicas, wait_listeners

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)


def delete_behind_the_servers_back(database_url: str, response_id: str) -> None:
    """Remove a response with plain SQL: no server process takes part, and no NOTIFY is sent."""
    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(pg_admin_url(database_url))
        try:
            async with conn.transaction():
                await conn.execute("DELETE FROM events WHERE response_id = $1", response_id)
                assert await conn.execute("DELETE FROM turns WHERE id = $1", response_id) == "DELETE 1"
        finally:
            await conn.close()

    asyncio.run(go())


def status_until(client, path: str, wanted: int, timeout: float = 30) -> int:
    """GET `path` until it answers `wanted` (a NOTIFY reaches the other replica a few ms
    after the delete's commit) or `timeout` passes; the last status."""
    deadline = time.monotonic() + timeout
    while (status := client.get(path).status_code) != wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


def finished_response(server, token: str, fake_llm, text: str) -> str:
    fake_llm.push(Reply(text=text))
    with server.client(token) as c:
        created = c.post("/v1/responses", json={"input": "q"})
    assert created.status_code == 200 and created.json()["status"] == "completed", created.text
    return created.json()["id"]


def test_a_delete_on_one_replica_is_not_served_from_another_replicas_memory(make_server, fake_hub, fake_llm):
    a, b, url = two_replicas(make_server)
    assert wait_listeners(url, 2) == 2  # both hear deletes from now on
    token = fake_hub.user_token("dora")
    rid = finished_response(a, token, fake_llm, "kept on A")
    path = f"/v1/responses/{rid}"
    with a.client(token) as ca, b.client(token) as cb:
        for _ in range(3):  # the first read keeps it, the next ones are answered from A's memory
            got = ca.get(path)
            assert got.status_code == 200 and got.json()["output"][0]["content"][0]["text"] == "kept on A"
        assert cb.get(path).status_code == 200  # B keeps it too
        deleted = cb.delete(path)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True, deleted.text
        assert cb.get(path).status_code == 404  # B forgot it when its delete committed
        assert status_until(ca, path, 404) == 404  # A forgot it on the NOTIFY
        assert ca.delete(path).status_code == 404


def test_a_replica_that_lost_its_listener_keeps_nothing_it_might_not_hear_deleted(make_server, fake_hub, fake_llm):
    a, b, url = two_replicas(make_server)
    assert wait_listeners(url, 2) == 2
    token = fake_hub.user_token("eli")
    rid = finished_response(a, token, fake_llm, "kept, then deleted unheard")
    path = f"/v1/responses/{rid}"
    with a.client(token) as ca:
        assert ca.get(path).status_code == 200  # kept in A's memory
        # A delete no replica hears of (plain SQL, no NOTIFY): A still answers from memory,
        # which shows the copy is in use here and what a missed NOTIFY would cost.
        delete_behind_the_servers_back(url, rid)
        assert ca.get(path).status_code == 200
        # A's listener connection is lost, as a delete made meanwhile would go unheard: A must
        # drop what it kept. Once A listens again, it reads the database, which has no such response.
        killed = listener_pids(url, terminate=True)
        assert len(killed) == 2
        assert wait_listeners(url, 2, not_in=killed) == 2
        assert ca.get(path).status_code == 404
        # Listening again, it keeps finished responses again, and forgets them on a delete.
        other = finished_response(a, token, fake_llm, "kept after the reconnect")
        assert ca.get(f"/v1/responses/{other}").status_code == 200
        with b.client(token) as cb:
            assert cb.delete(f"/v1/responses/{other}").status_code == 200
        assert status_until(ca, f"/v1/responses/{other}", 404) == 404
