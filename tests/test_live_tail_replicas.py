"""Two server processes on one PostgreSQL database: a tail on replica B of a turn running
on replica A gets every event in order, woken by LISTEN/NOTIFY (not by its slow poll), and
each process holds one listener connection however many tails it serves, reconnected
when it is lost."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from .conftest import PG_SKIP, PG_URL
from .fakes.llm import Reply
from .harness import SSE, collect_sse, iter_sse, pg_admin_url, wait_status

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)

LISTENER_APP = "mlagent-listen"  # the application_name of the listener connection


def listener_pids(database_url: str, terminate: bool = False) -> set[int]:
    """The backends of the servers' LISTEN connections on this database (killed if asked)."""
    import asyncpg

    name = database_url.rsplit("/", 1)[1]

    async def go() -> set[int]:
        conn = await asyncpg.connect(pg_admin_url(database_url))
        try:
            rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
                                    name, LISTENER_APP)
            if terminate:
                for row in rows:
                    await conn.execute("SELECT pg_terminate_backend($1)", row["pid"])
            return {row["pid"] for row in rows}
        finally:
            await conn.close()

    return asyncio.run(go())


def wait_listeners(database_url: str, expected: int, not_in: set[int] = frozenset(), timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while len(pids := listener_pids(database_url) - not_in) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return len(pids)


class Tail(threading.Thread):
    """Reads one SSE stream to its end in the background."""

    def __init__(self, server, token: str, url: str) -> None:
        super().__init__(daemon=True)
        self.server, self.token, self.url = server, token, url
        self.events: list[SSE] = []
        self.error: BaseException | None = None
        self.first = threading.Event()

    def run(self) -> None:
        try:
            with self.server.client(self.token) as c, c.stream("GET", self.url) as r:
                assert r.status_code == 200, r.read()
                for event in iter_sse(r):
                    self.events.append(event)
                    self.first.set()
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.first.set()


def two_replicas(make_server, **env: str):
    a = make_server("postgresql", **env).start()
    url = a.env["MLAGENT_DATABASE_URL"]
    b = make_server("postgresql", database_url=url, **env).start()
    return a, b, url


def test_tail_on_another_replica_gets_every_event_in_order(make_server, fake_hub, fake_llm):
    a, b, url = two_replicas(make_server)
    token = fake_hub.user_token("rita")
    fake_llm.push(Reply(text="".join(f"w{i} " for i in range(40)), chunks=40, chunk_delay=0.05))
    with a.client(token) as ca:
        rid = ca.post("/v1/responses", json={"input": "slow", "background": True}).json()["id"]
        tails = [Tail(b, token, f"/v1/responses/{rid}/events"),
                 Tail(b, token, f"/v1/responses/{rid}?stream=true&starting_after=2"),
                 Tail(b, token, f"/v1/responses/{rid}/events")]
        for t in tails:
            t.start()
        for t in tails:
            t.join(60)
            assert not t.is_alive() and t.error is None, t.error
        assert wait_status(ca, rid, {"completed"})["status"] == "completed"
        full = collect_sse(ca, "GET", f"/v1/responses/{rid}/events")  # the log, read on A
    assert full[-1].event == "response.completed"
    text = "".join(e.json()["delta"] for e in full if e.event == "response.output_text.delta")
    assert text == "".join(f"w{i} " for i in range(40))
    assert sum(e.event == "response.output_text.delta" for e in full) >= 30
    for tail in (tails[0], tails[2]):
        assert [int(e.id) for e in tail.events] == list(range(len(full)))
        assert [e.data for e in tail.events] == [e.data for e in full]
    resumed = tails[1].events
    assert [e.json()["sequence_number"] for e in resumed] == list(range(3, len(full)))
    assert [e.data for e in resumed] == [e.data for e in full[3:]]
    # One LISTEN connection per process, not one per tail.
    assert wait_listeners(url, 2) == 2


def test_tail_on_another_replica_is_woken_by_notify_not_by_the_poll(make_server, fake_hub, fake_llm):
    # A 120 s poll: a tail that relied on it would not end within the join below.
    a, b, url = two_replicas(make_server, mlagent_tail_poll_seconds="120")
    assert wait_listeners(url, 2) == 2
    # A lost listener connection comes back (and what follows shows it still wakes tails).
    killed = listener_pids(url, terminate=True)
    assert len(killed) == 2
    assert wait_listeners(url, 2, not_in=killed) == 2
    token = fake_hub.user_token("sam")
    gate = threading.Event()
    fake_llm.push(Reply(text="".join(f"t{i} " for i in range(12)), chunks=12, chunk_delay=0.05, gate=gate))
    with a.client(token) as ca:
        rid = ca.post("/v1/responses", json={"input": "gated", "background": True}).json()["id"]
        wait_status(ca, rid, {"in_progress"})
        tail = Tail(b, token, f"/v1/responses/{rid}/events")
        tail.start()
        assert tail.first.wait(30) and tail.error is None, tail.error
        # B's tail has read the log and waits; everything after this comes from A's writes.
        seen_before = len(tail.events)
        gate.set()
        tail.join(30)
        assert not tail.is_alive(), f"the tail on B was not woken: {[e.event for e in tail.events]}"
        assert tail.error is None, tail.error
        full = collect_sse(ca, "GET", f"/v1/responses/{rid}/events")
    assert len(full) > seen_before
    assert [e.data for e in tail.events] == [e.data for e in full]
    assert [int(e.id) for e in tail.events] == list(range(len(full)))
    assert full[-1].event == "response.completed"
    text = "".join(e.json()["delta"] for e in tail.events if e.event == "response.output_text.delta")
    assert text == "".join(f"t{i} " for i in range(12))


def test_the_listener_connects_with_the_pools_arguments_not_the_dialects_options():
    """A URL option SQLAlchemy's dialect consumes must not reach asyncpg.connect() (it would
    fail every reconnect and leave tails on the slow poll)."""
    from mlagent.store.notify import asyncpg_connect_args

    args = asyncpg_connect_args("postgresql+asyncpg://u:pw@db.example:6543/app?prepared_statement_cache_size=0")
    assert args == {"host": "db.example", "port": 6543, "user": "u", "password": "pw", "database": "app"}
