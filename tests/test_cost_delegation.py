"""A delegated peer spends the calling turn's budget (seed 000 "Cost control", seed 002
thread budgets): its model calls pass the same gate, so a peer cannot overspend the cap;
it stops, says so, and the turn pauses for approval as usual."""

from __future__ import annotations

import pytest

from .costs import MODEL, events, price_file
from .fakes.llm import Reply
from .harness import wait_status

DONE = {"incomplete", "completed", "failed", "cancelled"}
PLAN = {"steps": [{"step": "search the Hub", "status": "in_progress"}]}
# $0.10 / $100 per million tokens and an estimate of 100 output tokens: every call (100 output
# tokens) costs about $0.01 and is estimated at about as much.
PRICES = {MODEL: (0.1, 100.0)}


def _peer_replies() -> list[Reply]:
    return [Reply(tool_calls=[("update_plan", PLAN)], output_tokens=100),
            Reply(tool_calls=[("update_plan", {"steps": [{"step": "compare", "status": "in_progress"}]})],
                  output_tokens=100),
            Reply(text="Found: imdb.", output_tokens=100)]


def test_a_delegated_peer_cannot_overspend_the_turns_cap(make_server, fake_hub, fake_llm, tmp_path):
    server = make_server(mlagent_price_table=price_file(tmp_path, PRICES, output_tokens=100)).start()
    token = fake_hub.user_token("ivy")
    fake_llm.push(Reply(tool_calls=[("delegate", {"agent": "researcher", "task": "find a dataset"})],
                        output_tokens=100), *_peer_replies())
    cap = 0.025  # room for the caller's first call and one peer call, not a second
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "find data", "background": True, "max_cost_usd": cap}).json()["id"]
        body = wait_status(c, rid, DONE)
        cost = body["usage"]["cost"]
        assert cost["total_usd"] <= cap, cost  # the old code let the peer run on to ~$0.04
        assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "approval_required"}
        assert body["pending_approval"]["batch"] == "inference"
        assert len(fake_llm.requests) == 2  # the caller's call and the peer's first; nothing after
        (output,) = [i["output"] for i in body["output"] if i["type"] == "mcp_call"]
        assert output.startswith("(researcher stopped: the session's cost budget ran out"), output
        calls = [e.json() for e in events(c, rid) if e.event == "response.llm_call"]
        assert [call["agent"] for call in calls] == [None, "researcher"]
        assert cost["inference_usd"] == pytest.approx(sum(call["cost_usd"] for call in calls), abs=1e-6)

        # More budget: the caller continues under the same id (and could delegate again).
        fake_llm.reset()
        fake_llm.push(Reply(text="The peer ran out of budget; imdb is a likely candidate."))
        approved = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True, "new_max_cost_usd": 1.0})
        assert approved.status_code == 200, approved.text
        done = wait_status(c, rid, {"completed", "failed", "cancelled"})
        assert done["status"] == "completed", done
        assert done["usage"]["cost"]["total_usd"] <= 1.0


def test_a_delegated_peer_stops_at_the_threads_token_budget(make_server, fake_hub, fake_llm, tmp_path):
    server = make_server(mlagent_price_table=price_file(tmp_path, {MODEL: (0.0, 0.0)})).start()
    token = fake_hub.user_token("ivy")
    # The built-in ml-agent's thread budget is 200,000 tokens: the peer's first call uses it up.
    fake_llm.push(Reply(tool_calls=[("delegate", {"agent": "researcher", "task": "find a dataset"})]),
                  Reply(tool_calls=[("update_plan", PLAN)], input_tokens=200_000),
                  Reply(text="Found: imdb."), Reply(text="Use imdb."))
    with server.client(token) as c:
        done = c.post("/v1/responses", json={"input": "find data"}).json()
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "thread_token_budget_exceeded"
        assert len(fake_llm.requests) == 2  # the peer made no call past the budget, nor did the caller
        (output,) = [i["output"] for i in done["output"] if i["type"] == "mcp_call"]
        assert output.startswith("(researcher stopped: This thread has used"), output


def test_a_delegated_peers_artifacts_reach_the_response(make_server, fake_hub, fake_llm, tmp_path):
    """A peer that registers a model (a custom organism's deployer) announces it on the
    calling turn's `artifacts[]`, as the caller's own tools do; it was dropped before."""
    import yaml

    path = tmp_path / "organism.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "agents": [
        {"name": "ml-agent", "tools": ["*"], "peers": ["deployer"], "system_prompt": "lead"},
        {"name": "deployer", "tools": ["model_register"], "peers": [], "system_prompt": "deploy"}]}))
    server = make_server(mlagent_organism_path=str(path)).start()
    fake_llm.push(Reply(tool_calls=[("delegate", {"agent": "deployer", "task": "register it"})]),
                  Reply(tool_calls=[("model_register", {"modelname": "LR", "modelkind": "classification"})]),
                  Reply(text="Registered."), Reply(text="Done."))
    with server.client(fake_hub.user_token("ivy")) as c:
        done = c.post("/v1/responses", json={"input": "register a model"}).json()
        assert done["status"] == "completed", done
        (art,) = [a for a in done["artifacts"] if a["type"] == "registered_model"]
        assert art["name"] == "LR"
        assert c.get(f"/model/{art['id']}").status_code == 200  # the user's own model
