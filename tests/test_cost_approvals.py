"""Cost control over HTTP: a run pauses before an action its budget cannot cover, and
`POST /v1/responses/{id}/approvals` continues the same response id (seed 000)."""

from __future__ import annotations

import threading

import pytest

from .conftest import database_params
from .costs import MODEL, events, launches, module_server, price_file, with_job_tool
from .fakes.llm import Reply
from .harness import iter_sse, wait_status

PAUSED = {"incomplete", "completed", "failed", "cancelled"}
DONE = {"completed", "failed", "cancelled"}
# 11 input and 7 output tokens per fake reply at $1000/$2000 per million: $0.025 a call.
EXPENSIVE = {MODEL: (1000.0, 2000.0)}
CALL_USD = 0.025


@pytest.fixture(scope="module")
def priced(tmp_path_factory, fake_llm, fake_hub):
    """A server whose price table makes one model call's estimate exceed a $1 cap."""
    directory = tmp_path_factory.mktemp("priced")
    server = module_server(directory, fake_llm, fake_hub, mlagent_price_table=price_file(directory, EXPENSIVE)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def job_server(tmp_path_factory, fake_llm, fake_hub):
    """A server with the test-only `launch_job` tool; a10g-large costs $1.50 an hour."""
    directory = tmp_path_factory.mktemp("jobs")
    prices = price_file(directory, {MODEL: (10.0, 10.0)}, jobs={"a10g-large": 1.5})
    server = with_job_tool(module_server(directory, fake_llm, fake_hub, mlagent_price_table=prices)).start()
    yield server
    server.stop()


def test_model_call_over_cap_pauses_before_it_runs_and_approval_continues_same_id(priced, fake_hub, fake_llm):
    server = priced
    token = fake_hub.user_token("ada")
    fake_llm.push(Reply(text="The answer."))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "hi", "background": True, "max_cost_usd": 1.0}).json()["id"]
        body = wait_status(c, rid, PAUSED)
        assert body["status"] == "incomplete", body
        assert body["incomplete_details"] == {"reason": "approval_required"}
        assert fake_llm.requests == []  # paused before the model was called
        pending = body["pending_approval"]
        assert pending["batch"] == "inference"
        (action,) = pending["actions"]
        assert action["kind"] == "inference" and action["name"] == MODEL
        budget = pending["budget"]
        assert budget["cap"] == 1.0 and budget["spent"] == 0.0 and budget["remaining"] == 1.0
        assert budget["estimate"] == pytest.approx(action["estimate_usd"], abs=1e-6) and budget["estimate"] > 1.0

        log = events(c, rid)
        assert [e.event for e in log[-2:]] == ["response.approval_required", "response.incomplete"]
        assert log[-2].json()["budget"] == budget
        last = int(log[-1].json()["sequence_number"])

        # A client tails the stream from where the pause left it (open before the approval:
        # the stream waits at the pause); the approval continues it.
        tail: list = []
        opened = threading.Event()

        def follow() -> None:
            with c.stream("GET", f"/v1/responses/{rid}/events", params={"starting_after": last}) as r:
                opened.set()
                tail.extend(iter_sse(r))

        reader = threading.Thread(target=follow)
        reader.start()
        assert opened.wait(30)
        approved = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True, "new_max_cost_usd": 10})
        assert approved.status_code == 200, approved.text
        assert approved.json()["id"] == rid and approved.json()["status"] == "queued"
        assert approved.json()["max_cost_usd"] == 10
        reader.join(30)
        assert not reader.is_alive()
        seqs = [e.json()["sequence_number"] for e in tail]
        assert seqs == list(range(last + 1, last + 1 + len(tail)))
        assert tail[0].event == "response.queued" and tail[1].event == "response.in_progress"
        assert tail[-1].event == "response.completed"

        done = c.get(f"/v1/responses/{rid}").json()
        assert done["status"] == "completed" and done["incomplete_details"] is None
        assert done["pending_approval"] is None
        assert done["output"][-1]["content"][0]["text"] == "The answer."
        cost = done["usage"]["cost"]
        assert cost["inference_usd"] == pytest.approx(CALL_USD) and cost["total_usd"] == pytest.approx(CALL_USD)
        assert cost["max_cost_usd"] == 10 and cost["lower_bound"] is False
        assert len(fake_llm.requests) == 1


def test_job_over_cap_pauses_before_launch_and_denial_feedback_reaches_the_agent(job_server, fake_hub, fake_llm):
    server = job_server
    token = fake_hub.user_token("bea")
    fake_llm.push(Reply(tool_calls=[("launch_job", {"flavor": "a10g-large", "timeout": "2h"})]),
                  Reply(text="Understood: no GPU job."))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "train it", "background": True, "max_cost_usd": 2.0}).json()["id"]
        body = wait_status(c, rid, PAUSED)
        assert body["status"] == "incomplete" and body["incomplete_details"]["reason"] == "approval_required"
        (action,) = body["pending_approval"]["actions"]
        assert action["kind"] == "job" and action["name"] == "launch_job"
        assert action["estimate_usd"] == pytest.approx(3.0)  # $1.50/h × 2 h
        assert body["pending_approval"]["budget"]["estimate"] == pytest.approx(3.0)
        assert [(i["type"], i["status"]) for i in body["output"]] == [("mcp_call", "in_progress")]  # asked for, not run
        assert launches(server, rid) == []
        assert len(fake_llm.requests) == 1

        denied = c.post(f"/v1/responses/{rid}/approvals",
                        json={"approve": False, "feedback": "Too expensive: use cpu-basic instead."})
        assert denied.status_code == 200 and denied.json()["id"] == rid
        done = wait_status(c, rid, DONE)
    assert done["status"] == "completed", done
    assert launches(server, rid) == []
    result = next(i for i in done["output"] if i["type"] == "mcp_call")
    assert "Too expensive: use cpu-basic instead." in result["output"]
    tool_messages = [m for m in fake_llm.requests[-1].messages if m["role"] == "tool"]
    assert "Too expensive: use cpu-basic instead." in tool_messages[-1]["content"]
    assert done["output"][-1]["content"][0]["text"] == "Understood: no GPU job."
    assert done["usage"]["cost"]["jobs_usd"] == 0.0


def test_approved_job_runs_and_its_actual_cost_replaces_the_estimate(job_server, fake_hub, fake_llm):
    server = job_server
    token = fake_hub.user_token("cy")
    fake_llm.push(Reply(tool_calls=[("launch_job", {"flavor": "a10g-large", "timeout": "2h", "ran_seconds": 600})]),
                  Reply(text="Job done."))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "train", "background": True, "max_cost_usd": 2.0}).json()["id"]
        assert wait_status(c, rid, PAUSED)["status"] == "incomplete"
        # The estimate ($3) exceeds what remains, but spend has not reached the cap:
        # approving without a new cap authorises this batch.
        assert c.post(f"/v1/responses/{rid}/approvals", json={"approve": True}).status_code == 200
        done = wait_status(c, rid, DONE)
        log = events(c, rid)
    assert done["status"] == "completed", done
    assert [launch["flavor"] for launch in launches(server, rid)] == ["a10g-large"]
    # While it ran the estimate counted ($3); the reported runtime (10 min) replaced it.
    charged = [e.json()["cost"]["jobs_usd"] for e in log if e.event == "response.cost.updated"]
    assert pytest.approx(3.0) in charged
    assert done["usage"]["cost"]["jobs_usd"] == pytest.approx(0.25)
    assert done["usage"]["cost"]["total_usd"] == pytest.approx(0.25 + done["usage"]["cost"]["inference_usd"])


def test_chained_request_replaces_the_cap_and_approval_without_headroom_repauses(priced, fake_hub, fake_llm):
    server = priced
    token = fake_hub.user_token("dan")
    fake_llm.push(Reply(text="first"), Reply(text="second"))
    with server.client(token) as c:
        # A cap with room for the estimate of the prompt and every tool definition (the tool
        # catalogue grows); the chained request below then lowers it.
        first = c.post("/v1/responses", json={"input": "one", "max_cost_usd": 50.0}).json()
        assert first["status"] == "completed"
        assert first["usage"]["cost"]["total_usd"] == pytest.approx(CALL_USD)
        # The chained request's cap replaces the session's: 0.01 is below what was spent.
        rid = c.post("/v1/responses", json={"input": "two", "previous_response_id": first["id"],
                                            "max_cost_usd": 0.01, "background": True}).json()["id"]
        body = wait_status(c, rid, PAUSED)
        assert body["status"] == "incomplete" and body["max_cost_usd"] == 0.01
        budget = body["pending_approval"]["budget"]
        assert budget["cap"] == 0.01 and budget["spent"] == pytest.approx(CALL_USD) and budget["remaining"] == 0.0
        assert len(fake_llm.requests) == 1
        busy = c.post("/v1/responses", json={"input": "three", "previous_response_id": rid})
        assert busy.status_code == 409

        before = len(events(c, rid))
        again = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True})
        assert again.status_code == 200
        assert again.json()["status"] == "incomplete"
        assert again.json()["incomplete_details"] == {"reason": "approval_required"}
        log = events(c, rid)
        assert [e.event for e in log[before:]] == ["response.approval_required", "response.incomplete"]
        assert len(fake_llm.requests) == 1

        ok = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True, "new_max_cost_usd": 1.0})
        assert ok.status_code == 200 and ok.json()["status"] == "queued"
        done = wait_status(c, rid, DONE)
    assert done["status"] == "completed" and done["output"][-1]["content"][0]["text"] == "second"
    assert done["max_cost_usd"] == 1.0
    assert done["usage"]["cost"]["total_usd"] == pytest.approx(2 * CALL_USD)  # the session window


@pytest.mark.parametrize("database", database_params())
def test_pause_survives_a_restart_and_is_approved_afterwards(make_server, fake_hub, fake_llm, tmp_path, database):
    prices = price_file(tmp_path, EXPENSIVE)
    first = make_server(database, mlagent_price_table=prices).start()
    token = fake_hub.user_token("eve")
    with first.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "hi", "background": True, "max_cost_usd": 1.0}).json()["id"]
        assert wait_status(c, rid, PAUSED)["status"] == "incomplete"
    first.kill()

    second = make_server(database, data_dir=first.data_dir, database_url=first.env.get("MLAGENT_DATABASE_URL"),
                         mlagent_price_table=prices).start()
    fake_llm.push(Reply(text="after the restart"))
    with second.client(token) as c:
        body = c.get(f"/v1/responses/{rid}").json()
        assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "approval_required"}
        assert body["pending_approval"]["actions"][0]["kind"] == "inference"
        ok = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True, "new_max_cost_usd": 20})
        assert ok.status_code == 200, ok.text
        done = wait_status(c, rid, DONE)
    assert done["status"] == "completed", done
    assert done["output"][-1]["content"][0]["text"] == "after the restart"
    assert fake_llm.requests[-1].token == token  # the approval re-attached the caller's token


def test_approval_errors(priced, fake_hub, fake_llm):
    server = priced
    owner, other = fake_hub.user_token("fay"), fake_hub.user_token("gus")
    with server.client(owner) as c, server.client(other) as o:
        paused = c.post("/v1/responses", json={"input": "x", "background": True, "max_cost_usd": 1.0}).json()["id"]
        assert wait_status(c, paused, PAUSED)["status"] == "incomplete"
        # Another account's response is a 404, never a 403.
        r = o.post(f"/v1/responses/{paused}/approvals", json={"approve": True})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = c.post(f"/v1/responses/{paused}/approvals", json={"new_max_cost_usd": 3})
        assert r.status_code == 400 and r.json()["error"]["param"] == "approve"
        r = c.post(f"/v1/responses/{paused}/approvals", json={"approve": True, "new_max_cost_usd": 0})
        assert r.status_code == 400 and r.json()["error"]["param"] == "new_max_cost_usd"
        # Cancelling a paused response drops its pending batch: nothing left to approve.
        assert c.post(f"/v1/responses/{paused}/cancel").json()["status"] == "cancelled"
        r = c.post(f"/v1/responses/{paused}/approvals", json={"approve": True})
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_pending_approval"
        fake_llm.push(Reply(text="cheap enough"))
        done = c.post("/v1/responses", json={"input": "y", "max_cost_usd": 50}).json()
        assert done["status"] == "completed"
        r = c.post(f"/v1/responses/{done['id']}/approvals", json={"approve": False})
        assert r.status_code == 409
        r = c.post("/v1/responses/resp_missing/approvals", json={"approve": True})
        assert r.status_code == 404


def test_denying_a_paused_model_call_ends_the_run_and_keeps_the_feedback(priced, fake_hub, fake_llm):
    server = priced
    token = fake_hub.user_token("hal")
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "x", "background": True, "max_cost_usd": 1.0}).json()["id"]
        assert wait_status(c, rid, PAUSED)["status"] == "incomplete"
        assert c.post(f"/v1/responses/{rid}/approvals",
                      json={"approve": False, "feedback": "Stop here."}).status_code == 200
        done = wait_status(c, rid, DONE)
        assert done["status"] == "cancelled"
        assert fake_llm.requests == []
        fake_llm.push(Reply(text="ok"))
        nxt = c.post("/v1/responses", json={"input": "go", "previous_response_id": rid, "max_cost_usd": 50}).json()
    assert nxt["status"] == "completed"
    assert any("Stop here." in (m.get("content") or "") for m in fake_llm.requests[-1].messages)
