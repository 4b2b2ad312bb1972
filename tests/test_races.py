"""Races on the turn lifecycle, driven by many concurrent clients (asyncio + httpx) against
the real server on SQLite and PostgreSQL: each check repeats a few rounds to catch the race.

- follow-ups on one `previous_response_id`: exactly one is accepted, the rest are 409
  `session_busy`, and the session's history keeps every accepted turn;
- creates sharing an `Idempotency-Key`: one turn, every caller gets it, no slot leaks;
- cancel against the claim of the turn: a cancelled turn ends `cancelled`, promptly;
- resuming a finished stream at (or past) its last event ends the stream at once.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from .conftest import database_params
from .fakes.llm import Reply
from .harness import iter_sse, wait_status

CLIENTS = 12
ROUNDS = 4
DONE = {"completed", "failed", "cancelled", "incomplete"}


def _aclient(server, token: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
    return httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                             limits=limits)


async def _together(n: int, call) -> list[httpx.Response]:
    """Start `n` calls at the same instant (a barrier), return their responses."""
    start = asyncio.Event()

    async def one(i: int) -> httpx.Response:
        await start.wait()
        return await call(i)

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0.05)
    start.set()
    return await asyncio.gather(*tasks)


@pytest.fixture(scope="module", params=database_params())
def server(request, tmp_path_factory, fake_llm, fake_hub):
    from .conftest import PG_URL
    from .harness import ServerProcess, create_pg_database, drop_pg_database

    values = {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
              "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "1000", "MLAGENT_MAX_SESSIONS_GLOBAL": "1000"}
    url = None
    if request.param == "postgresql":
        url = create_pg_database(PG_URL)
        values["MLAGENT_DATABASE_URL"] = url
    srv = ServerProcess(tmp_path_factory.mktemp("races"), values).start()
    yield srv
    srv.stop()
    if url:
        drop_pg_database(PG_URL, url)


def _held(fake_llm, text: str = "held reply") -> threading.Event:
    """Every model call waits for the returned gate: a claimed turn stays in progress."""
    gate = threading.Event()
    fake_llm.default = Reply(text=text, gate=gate)
    return gate


def test_concurrent_followups_accept_exactly_one_and_keep_the_history(server, fake_hub, fake_llm):
    token = fake_hub.user_token("racer-followup")
    for rnd in range(ROUNDS):
        fake_llm.reset()
        with server.client(token) as c:
            fake_llm.push(Reply(text=f"first answer {rnd}"))
            first = c.post("/v1/responses", json={"input": f"first {rnd}"}).json()
            assert first["status"] == "completed", first
        gate = _held(fake_llm, f"second answer {rnd}")

        async def burst(rnd=rnd, previous=first["id"]):
            async with _aclient(server, token) as ac:
                return await _together(CLIENTS, lambda i: ac.post("/v1/responses", json={
                    "input": f"follow-up {rnd}.{i}", "previous_response_id": previous, "background": True}))

        try:
            answers = asyncio.run(burst())
        finally:
            gate.set()
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] + [409] * (CLIENTS - 1), [(r.status_code, r.text[:200]) for r in answers]
        assert all(r.json()["error"]["code"] == "session_busy" for r in answers if r.status_code == 409)
        (winner,) = [r.json() for r in answers if r.status_code == 200]
        assert winner["status"] == "queued"
        with server.client(token) as c:
            done = wait_status(c, winner["id"], DONE)
            assert done["status"] == "completed", done
            said = done["output"][0]["content"][0]["text"]
            fake_llm.reset()
            fake_llm.push(Reply(text="third"))
            third = c.post("/v1/responses", json={"input": f"third {rnd}", "previous_response_id": winner["id"]}).json()
            assert third["status"] == "completed", third
        # The model saw the whole conversation: both earlier turns and their answers, in order.
        seen = [(m["role"], m.get("content")) for m in fake_llm.requests[-1].messages if m["role"] != "system"]
        users = [content for role, content in seen if role == "user"]
        assert users[0] == f"first {rnd}" and users[-1] == f"third {rnd}" and len(users) == 3, seen
        assert users[1].startswith(f"follow-up {rnd}.")
        assert ("assistant", f"first answer {rnd}") in seen and ("assistant", said) in seen, seen


def test_concurrent_idempotent_creates_give_one_turn_and_leak_no_slot(make_server, fake_hub, fake_llm, database):
    # Two live sessions per account: the one these rounds continue, and one more.
    server = make_server(database, mlagent_max_sessions_per_account="2").start()
    token = fake_hub.user_token("racer-idem")
    previous = None
    for rnd in range(ROUNDS):
        gate = _held(fake_llm)
        key = f"idem-{rnd}"
        body = {"input": f"same request {rnd}", "background": True}
        if previous is not None:  # round 0 opens the session, the others continue it
            body["previous_response_id"] = previous

        async def burst(body=body, key=key):
            async with _aclient(server, token) as ac:
                return await _together(CLIENTS, lambda i: ac.post(
                    "/v1/responses", json=body, headers={"Idempotency-Key": key}))

        try:
            answers = asyncio.run(burst())
        finally:
            gate.set()
        assert [r.status_code for r in answers] == [200] * CLIENTS, [(r.status_code, r.text[:300]) for r in answers]
        assert len({r.json()["id"] for r in answers}) == 1
        previous = answers[0].json()["id"]
        with server.client(token) as c:
            assert wait_status(c, previous, DONE)["status"] == "completed"
            # The key still answers the same turn afterwards.
            again = c.post("/v1/responses", json=body, headers={"Idempotency-Key": key})
            assert again.status_code == 200 and again.json()["id"] == previous
    with server.client(token) as c:
        assert len(c.get(f"/v1/responses/{previous}").json()["output"]) == 1
        # One live session is in use; a leaked slot from any failed create would refuse this.
        fresh = c.post("/v1/responses", json={"input": "a second session", "background": True})
        assert fresh.status_code == 200, fresh.text


@pytest.mark.parametrize("database", database_params())
def test_cancel_against_claim_always_ends_cancelled(make_server, fake_hub, fake_llm, database):
    server = make_server(database, mlagent_lease_seconds="2", mlagent_max_sessions_per_account="1000",
                         mlagent_max_sessions_global="1000").start()
    token = fake_hub.user_token("racer-cancel")
    gate = _held(fake_llm)
    try:
        for _ in range(ROUNDS):
            async def pair(ac: httpx.AsyncClient, i: int):
                created = await ac.post("/v1/responses", json={"input": f"cancel me {i}", "background": True})
                assert created.status_code == 200, created.text
                rid = created.json()["id"]
                if i % 3:
                    await asyncio.sleep(0.001 * i)  # land anywhere around the claim
                return rid, await ac.post(f"/v1/responses/{rid}/cancel")

            async def burst():
                async with _aclient(server, token) as ac:
                    return await _together(CLIENTS, lambda i: pair(ac, i))

            results = asyncio.run(burst())
            for _rid, cancel in results:
                assert cancel.status_code == 200, cancel.text
                # The model is held, so nothing finishes first: the answer is the ended turn.
                assert cancel.json()["status"] == "cancelled", cancel.json()
            with server.client(token) as c:
                for rid, _ in results:
                    # The model is held: nothing can complete; a cancelled turn ends cancelled
                    # at once, not `incomplete` after its lease runs out.
                    body = wait_status(c, rid, {"completed", "failed", "cancelled", "incomplete"}, timeout=10)
                    assert body["status"] == "cancelled", body
                    events = c.get(f"/v1/responses/{rid}/events", params={"starting_after": -1})
                    types = [e.event for e in iter_sse_text(events.text)]
                    assert types[-1] == "response.cancelled" and types.count("response.cancelled") == 1, types
    finally:
        gate.set()


def iter_sse_text(text: str):
    class _R:
        def iter_lines(self):
            return iter(text.split("\n"))
    return iter_sse(_R())


def _stream_ends(client: httpx.Client, url: str, seconds: float, **kw) -> tuple[bool, list]:
    """Read an SSE stream for at most `seconds`: (ended by itself, events)."""
    events: list = []
    deadline = time.monotonic() + seconds
    with client.stream("GET", url, **kw) as r:
        assert r.status_code == 200, r.read()
        lines = r.iter_lines()
        while time.monotonic() < deadline:
            try:
                line = next(lines)
            except StopIteration:
                return True, events
            if line.startswith("event:"):
                events.append(line.split(":", 1)[1].strip())
    return False, events


def test_resuming_a_finished_stream_at_its_end_ends_at_once(server, fake_hub, fake_llm):
    token = fake_hub.user_token("racer-sse")
    fake_llm.reset()
    fake_llm.push(Reply(text="all done"))
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=httpx.Timeout(10, read=3)) as c:
        done = c.post("/v1/responses", json={"input": "finish"}).json()
        assert done["status"] == "completed"
        rid = done["id"]
        log = list(iter_sse_text(c.get(f"/v1/responses/{rid}/events").text))
        last = int(log[-1].id)
        assert log[-1].event == "response.completed"
        # Keep-alives come every second here: a stream that does not end by itself runs
        # for the whole window.
        for kw in ({"headers": {"Last-Event-ID": str(last)}}, {"params": {"starting_after": last}},
                   {"params": {"starting_after": last + 5}}):
            ended, events = _stream_ends(c, f"/v1/responses/{rid}/events", 4, **kw)
            assert ended and events == [], (kw, events)
        for after in (last, last + 5):
            ended, events = _stream_ends(c, f"/v1/responses/{rid}", 4,
                                         params={"stream": "true", "starting_after": after})
            assert ended and events == [], (after, events)
        # One before the end still gets the final event, then ends.
        ended, events = _stream_ends(c, f"/v1/responses/{rid}/events", 4, headers={"Last-Event-ID": str(last - 1)})
        assert ended and events == ["response.completed"]
