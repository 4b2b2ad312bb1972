"""Seed 001 tasks paused on `approval_required` are answered over `/api` and `/ninja-api`
(`POST /api/tasks/{id}/approvals`, X-API-Key): the same task continues on the server's LLM
key; another account's task is 404, an unpaused one 409, a bad body 400 (the surface's validation status), all in the seed's
`{"error", "details"}` body."""

from __future__ import annotations

import pytest

from .api_servers import SERVER_LLM_KEY, client, start_api_server, wait_task
from .costs import MODEL, price_file
from .fakes.llm import Reply

# One model call is estimated at 5,000 output tokens x $2,000/M = $10: over a task's $5 cap.
PRICES = {MODEL: (1000.0, 2000.0)}


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    directory = tmp_path_factory.mktemp("task-approvals")
    prices = price_file(directory, PRICES, output_tokens=5000)
    proc = start_api_server(directory, fake_llm, fake_hub, MLAGENT_PRICE_TABLE=prices)
    yield proc
    proc.stop()


def paused_task(c, prefix: str) -> str:
    accepted = c.post(f"{prefix}/tasks/", json={"prompt": "Train a small classifier"})
    assert accepted.status_code == 200, accepted.text
    task_id = accepted.json()["task_id"]
    paused = wait_task(c, task_id, prefix)
    assert paused["status"] == "incomplete" and paused["error"] == "incomplete: approval_required", paused
    return task_id


def test_approving_a_paused_task_continues_it_on_the_server_key(server, fake_llm):
    fake_llm.push(Reply(text="Classifier trained."))
    with client(server) as alice, client(server, "key-bob") as bob:
        task_id = paused_task(alice, "/api")
        assert fake_llm.requests == []  # paused before the model was called

        other = bob.post(f"/api/tasks/{task_id}/approvals", json={"approve": True})
        assert other.status_code == 404
        assert set(other.json()) == {"error", "details"} and other.json()["details"]["field"] == "task_id"
        bad = alice.post(f"/api/tasks/{task_id}/approvals", json={"approve": True, "new_max_cost_usd": -1})
        assert bad.status_code == 400 and set(bad.json()) == {"error", "details"}
        assert "new_max_cost_usd" in str(bad.json()["details"])
        extra = alice.post(f"/api/tasks/{task_id}/approvals", json={"approve": True, "budget": 3})
        assert extra.status_code == 400 and "budget" in str(extra.json()["details"])
        assert alice.post("/api/tasks/resp_nope/approvals", json={"approve": True}).status_code == 404
        assert fake_llm.requests == []

        approved = alice.post(f"/api/tasks/{task_id}/approvals", json={"approve": True, "new_max_cost_usd": 20})
        assert approved.status_code == 200, approved.text
        assert approved.json()["task_id"] == task_id and approved.json()["status"] == "queued"
        done = wait_task(alice, task_id)
        assert done["status"] == "completed" and done["result"] == "Classifier trained.", done
        (call,) = fake_llm.requests
        assert call.token == SERVER_LLM_KEY

        again = alice.post(f"/api/tasks/{task_id}/approvals", json={"approve": True})
        assert again.status_code == 409 and again.json()["details"]["code"] == "no_pending_approval"
        assert set(again.json()) == {"error", "details"}


def test_denying_a_paused_task_over_ninja_api_cancels_it(server, fake_llm):
    with client(server) as alice:
        task_id = paused_task(alice, "/ninja-api")
        denied = alice.post(f"/ninja-api/tasks/{task_id}/approvals/", json={"approve": False, "feedback": "too dear"})
        assert denied.status_code == 200, denied.text
        assert wait_task(alice, task_id, "/ninja-api")["status"] == "cancelled"
        assert fake_llm.requests == []
        late = alice.post(f"/ninja-api/tasks/{task_id}/approvals", json={"approve": True})
        assert late.status_code == 409 and late.json()["details"]["code"] == "no_pending_approval"
