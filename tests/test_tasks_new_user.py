"""/api/tasks for a new user (issue 13, item 4): an HF token runs the task as that user; a
paused task shows its pending actions and estimates; its events stream as on /v1; the
operator can follow the turns it injects through /v1; a task with no HF token is not
offered the tools that act as the caller on the Hub."""

from __future__ import annotations

import secrets

import httpx
import pytest

from .api_servers import SERVER_LLM_KEY, client, start_api_server, wait_task
from .costs import MODEL, price_file
from .fakes.llm import Reply

PRICES = {MODEL: (1000.0, 2000.0)}  # one model call is estimated at $10: over a task's $5 cap


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    directory = tmp_path_factory.mktemp("tasks-new-user")
    proc = start_api_server(directory, fake_llm, fake_hub,
                            MLAGENT_PRICE_TABLE=price_file(directory, PRICES, output_tokens=5000))
    yield proc
    proc.stop()


def bearer(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def tool_names(request) -> set[str]:
    return {t["function"]["name"] for t in request.body.get("tools") or []}


def test_a_task_with_an_hf_token_runs_as_that_user_and_shows_its_pause(server, fake_hub, fake_llm):
    token = fake_hub.user_token(f"tasker-{secrets.token_hex(3)}")
    fake_llm.push(Reply(text="Done as you."))
    with bearer(server, token) as c, client(server) as alice:
        accepted = c.post("/api/tasks/", json={"prompt": "Train a small classifier"})
        assert accepted.status_code == 200, accepted.text
        task_id = accepted.json()["task_id"]
        paused = wait_task(c, task_id)
        assert paused["status"] == "incomplete" and paused["error"] == "incomplete: approval_required"
        pending = paused["pending_approval"]
        assert pending["batch"] == "inference" and pending["budget"]["cap"] == 5.0
        assert pending["actions"][0]["estimate_usd"] > 5.0 and pending["budget"]["estimate"] > 5.0
        assert alice.get(f"/api/tasks/{task_id}").status_code == 404  # another account's task

        stream = c.get(f"/api/tasks/{task_id}/events")
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        names = [line[7:] for line in stream.text.splitlines() if line.startswith("event: ")]
        assert names[0] == "response.created" and "response.approval_required" in names
        assert "id: 0" in stream.text  # resumable like /v1 (Last-Event-ID / starting_after)
        assert alice.get(f"/api/tasks/{task_id}/events").status_code == 404

        approved = c.post(f"/api/tasks/{task_id}/approvals", json={"approve": True, "new_max_cost_usd": 50})
        assert approved.status_code == 200, approved.text
        done = wait_task(c, task_id)
        assert done["status"] == "completed" and done["result"] == "Done as you." and done["pending_approval"] is None
    (call,) = fake_llm.requests
    assert call.token == token  # the user's own token, not the server's key
    assert {"hf_job_launch", "repo_create"} <= tool_names(call)  # their Hub tools are offered


def test_a_task_without_an_hf_token_is_not_offered_the_callers_hub_tools(server, fake_llm):
    fake_llm.push(Reply(text="ok"))
    with client(server) as alice:
        task_id = alice.post("/api/tasks/", json={"prompt": "look around"}).json()["task_id"]
        assert wait_task(alice, task_id)["status"] == "incomplete"
        alice.post(f"/api/tasks/{task_id}/approvals", json={"approve": True, "new_max_cost_usd": 50})
        assert wait_task(alice, task_id)["status"] == "completed"
    (call,) = fake_llm.requests
    assert call.token == SERVER_LLM_KEY
    names = tool_names(call)
    assert names and not {n for n in names if n.startswith(("hf_job", "repo_"))}, names
    assert "hub_search" in names  # reading the public Hub needs no token


def test_the_operator_follows_the_turns_it_injects_through_v1(server, fake_hub):
    with client(server, "key-ops") as ops, client(server, "key-bob") as bob:
        injected = ops.post("/api/v1/inject", json={"to": "ml-agent", "payload": "status report please"})
        assert injected.status_code == 200, injected.text
        rid = injected.json()["response_id"]
        wait_task(ops, rid)
        r = ops.get(f"/v1/responses/{rid}")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == rid and r.json()["status"] == "incomplete"
        events = ops.get(f"/v1/responses/{rid}/events")
        assert events.status_code == 200 and "event: response.created" in events.text
        assert bob.get(f"/v1/responses/{rid}").status_code == 404  # a plain key reads only its own account's
    with bearer(server, fake_hub.user_token(f"nosy-{secrets.token_hex(3)}")) as nosy:
        assert nosy.get(f"/v1/responses/{rid}").status_code == 404
