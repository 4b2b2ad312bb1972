"""A server killed with SIGKILL mid-turn and started again: the turn reports
`incomplete` / `server_restart`, nothing acknowledged is lost, streams resume without gap."""

import pytest

from .conftest import database_params
from .fakes.llm import Reply
from .harness import collect_sse, iter_sse, wait_status


@pytest.mark.parametrize("database", database_params())
def test_sigkill_mid_turn_then_restart(make_server, fake_hub, fake_llm, database):
    first = make_server(database, mlagent_lease_seconds="2").start()
    token = fake_hub.user_token("ivan")
    fake_llm.push(Reply(text="x" * 200, chunks=40, chunk_delay=0.25))
    acknowledged = []
    with first.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "long", "background": True}).json()["id"]
        with c.stream("GET", f"/v1/responses/{rid}/events") as r:
            for event in iter_sse(r):
                acknowledged.append(event)
                if sum(e.event == "response.output_text.delta" for e in acknowledged) == 5:
                    first.kill()
                    break
    assert acknowledged[-1].event == "response.output_text.delta"

    second = make_server(database, data_dir=first.data_dir,
                         database_url=first.env.get("MLAGENT_DATABASE_URL"), mlagent_lease_seconds="2").start()
    with second.client(token) as c:
        body = wait_status(c, rid, {"incomplete"})
        assert body["status"] == "incomplete"
        assert body["incomplete_details"] == {"reason": "server_restart"}
        message = body["output"][0]
        assert message["status"] == "incomplete"
        assert message["content"][0]["text"].startswith("x" * 5)
        # Every event acknowledged before the kill is still in the log, unchanged.
        replay = collect_sse(c, "GET", f"/v1/responses/{rid}/events")
        assert [e.data for e in replay[: len(acknowledged)]] == [e.data for e in acknowledged]
        assert [int(e.id) for e in replay] == list(range(len(replay)))
        # Resuming from the last acknowledged id continues with no gap and no duplicate.
        rest = collect_sse(c, "GET", f"/v1/responses/{rid}/events",
                           headers={"Last-Event-ID": acknowledged[-1].id})
        assert [int(e.id) for e in rest] == list(range(int(acknowledged[-1].id) + 1, len(replay)))
        assert rest[-1].event == "response.incomplete"
        # The session carries on: a chained request after the restart runs.
        fake_llm.push(Reply(text="continued after restart"))
        nxt = c.post("/v1/responses", json={"input": "go on", "previous_response_id": rid}).json()
        assert nxt["status"] == "completed"
        assert nxt["output"][0]["content"][0]["text"] == "continued after restart"
        history = fake_llm.requests[-1].messages
        assert history[-1]["content"] == "go on" and any(m.get("content") == "long" for m in history)
