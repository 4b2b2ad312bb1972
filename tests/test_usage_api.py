"""`/api/v1/usage…` (seed 002) over HTTP: totals that add up exactly to the recorded
calls, per-agent and per-model views, thread budgets, visibility and reset."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import mlagent

from .conftest import database_params
from .costs import MODEL, llm_calls, price_file, with_job_tool
from .fakes.llm import Reply

FREE_MODEL = "acme/unpriced-model"


def keyed(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30)


def _server(make_server, tmp_path, database: str = "sqlite"):
    return make_server(database, mlagent_price_table=price_file(tmp_path, {MODEL: (3.0, 15.0)}),
                       mlagent_models=f"{MODEL},{FREE_MODEL}", mlagent_operator_key="op-key",
                       agent_api_key="user-key").start()


def _sums(calls: list[dict]) -> dict:
    return {"prompt_tokens": sum(c["input_tokens"] for c in calls),
            "completion_tokens": sum(c["output_tokens"] for c in calls),
            "total_tokens": sum(c["input_tokens"] + c["output_tokens"] for c in calls),
            "request_count": len(calls),
            "total_cost": round(sum(c["cost_usd"] or 0.0 for c in calls), 9)}


@pytest.mark.parametrize("database", database_params())
def test_usage_totals_add_up_to_the_recorded_calls(make_server, tmp_path, fake_hub, fake_llm, database):
    usage_server = _server(make_server, tmp_path, database)
    alice, bob = fake_hub.user_token("alice"), fake_hub.user_token("bob")
    fake_llm.push(
        Reply(tool_calls=[("update_plan", {"steps": [{"step": "look", "status": "in_progress"}]})],
              input_tokens=120, output_tokens=30),
        Reply(text="one", input_tokens=200, output_tokens=45),
        Reply(text="two", input_tokens=333, output_tokens=17),
    )
    with usage_server.client(alice) as a:
        first = a.post("/v1/responses", json={"input": "plan it"}).json()
        second = a.post("/v1/responses", json={"input": "more", "previous_response_id": first["id"]}).json()
        assert first["status"] == second["status"] == "completed"
        alice_calls = llm_calls(a, first["id"]) + llm_calls(a, second["id"])
    fake_llm.push(Reply(text="free", input_tokens=50, output_tokens=5))
    with usage_server.client(bob) as b:
        bobs = b.post("/v1/responses", json={"input": "hi", "model": FREE_MODEL}).json()
        assert bobs["status"] == "completed"
        bob_calls = llm_calls(b, bobs["id"])

    # Each call's cost is its tokens at the table's prices ($3 / $15 per million).
    assert [c["input_tokens"] for c in alice_calls] == [120, 200, 333]
    for call in alice_calls:
        assert call["cost_usd"] == pytest.approx((call["input_tokens"] * 3 + call["output_tokens"] * 15) / 1e6)
    assert bob_calls[0]["cost_usd"] is None  # unpriced

    with usage_server.client(alice) as a:
        usage = a.get("/api/v1/usage").json()["usage"]
        totals = usage["totals"]
        assert {k: totals[k] for k in _sums(alice_calls)} == _sums(alice_calls)
        assert totals["avg_latency_ms"] == pytest.approx(sum(c["latency_ms"] for c in alice_calls) / 3, abs=1e-3)
        assert totals["cost_is_lower_bound"] is False and totals["unpriced_requests"] == 0
        assert usage["active_threads"] == 1
        assert [m["model"] for m in usage["by_model"]] == [MODEL]
        assert usage["by_agent"] == [{"agent_id": "ml-agent", **{k: totals[k] for k in (
            "total_tokens", "prompt_tokens", "completion_tokens", "request_count", "total_cost")},
            "cost_is_lower_bound": False}]
        model = a.get(f"/api/v1/usage/models/{MODEL}").json()
        assert model["model"] == MODEL and model["request_count"] == 3 and model["total_cost"] == totals["total_cost"]
        assert a.get("/api/v1/usage/agents/ml-agent").json()["total_tokens"] == totals["total_tokens"]
        assert a.get("/api/v1/usage/agents/nobody").json()["request_count"] == 0
        # The response reports the session window's spend, split by kind.
        cost = a.get(f"/v1/responses/{second['id']}").json()["usage"]["cost"]
        assert cost["inference_usd"] == pytest.approx(totals["total_cost"])
        assert cost["input_tokens"] == totals["prompt_tokens"] and cost["jobs_usd"] == cost["sandboxes_usd"] == 0

    with usage_server.client(bob) as b:
        mine = b.get("/api/v1/usage").json()["usage"]["totals"]
        assert mine["request_count"] == 1 and mine["total_cost"] == 0.0
        assert mine["cost_is_lower_bound"] is True and mine["unpriced_requests"] == 1

    with keyed(usage_server, "op-key") as op:
        everyone = op.get("/api/v1/usage").json()["usage"]
        assert everyone["totals"]["request_count"] == 4
        assert everyone["totals"]["prompt_tokens"] == _sums(alice_calls + bob_calls)["prompt_tokens"]
        assert everyone["totals"]["cost_is_lower_bound"] is True
        assert sorted(m["model"] for m in everyone["by_model"]) == sorted([MODEL, FREE_MODEL])
        assert everyone["active_threads"] == 2
    with keyed(usage_server, "user-key") as other:
        assert other.get("/api/v1/usage").json()["usage"]["totals"]["request_count"] == 0


@pytest.mark.parametrize("database", database_params())
def test_thread_budgets_visibility_and_reset(make_server, tmp_path, fake_hub, fake_llm, database):
    usage_server = _server(make_server, tmp_path, database)
    alice, bob = fake_hub.user_token("ann"), fake_hub.user_token("ben")
    fake_llm.push(Reply(text="a", input_tokens=100, output_tokens=10), Reply(text="b", input_tokens=900, output_tokens=90))
    with usage_server.client(alice) as a:
        small = a.post("/v1/responses", json={"input": "x"}).json()
    with usage_server.client(bob) as b:
        big = b.post("/v1/responses", json={"input": "y"}).json()
    with keyed(usage_server, "op-key") as op:
        listing = op.get("/api/v1/usage/threads").json()
        assert listing["default_max_tokens"] == 200_000 and listing["count"] == 2  # ml-agent's token_budget
        assert [t["thread_id"] for t in listing["threads"]] == [big["session_id"], small["session_id"]]  # hottest first
    with usage_server.client(alice) as a:
        mine = a.get("/api/v1/usage/threads").json()
        assert [t["thread_id"] for t in mine["threads"]] == [small["session_id"]]
        info = a.get(f"/api/v1/usage/threads/{small['session_id']}").json()
        assert info == {"thread_id": small["session_id"], "max_tokens": 200_000, "prompt_tokens": 100,
                        "completion_tokens": 10, "total_tokens": 110, "remaining": 200_000 - 110,
                        "percent_used": 0.1, "is_exhausted": False}
        # Another account's thread and an unknown one are 404s; looking never creates a budget.
        for tid in (big["session_id"], "sess_unknown", "sess_unknown"):
            r = a.get(f"/api/v1/usage/threads/{tid}")
            assert r.status_code == 404 and set(r.json()) == {"error", "details"}
        # A caller's reset zeroes its own counters only; the log and budgets stay.
        reset = a.post("/api/v1/usage/reset").json()
        assert reset["success"] is True and reset["scope"] == "ann"
        assert a.get("/api/v1/usage").json()["usage"]["totals"]["request_count"] == 0
        assert a.get(f"/api/v1/usage/threads/{small['session_id']}").json()["total_tokens"] == 110
    with keyed(usage_server, "op-key") as op:
        assert op.get("/api/v1/usage").json()["usage"]["totals"]["request_count"] == 1  # ben's
        assert op.post("/api/v1/usage/reset").json()["scope"] == "all"
        assert op.get("/api/v1/usage").json()["usage"]["totals"]["request_count"] == 0
    fake_llm.push(Reply(text="c", input_tokens=7, output_tokens=3))
    with usage_server.client(alice) as a:
        a.post("/v1/responses", json={"input": "again", "previous_response_id": small["id"]})
        totals = a.get("/api/v1/usage").json()["usage"]["totals"]
        assert (totals["request_count"], totals["total_tokens"]) == (1, 10)
        assert a.get(f"/api/v1/usage/threads/{small['session_id']}").json()["total_tokens"] == 120
    with usage_server.client() as anon:
        r = anon.get("/api/v1/usage")
        assert r.status_code == 401 and "error" in r.json()


def test_thread_over_its_token_budget_stops_with_a_clear_error(make_server, fake_hub, fake_llm, tmp_path):
    # A thread's budget is its agent's `token_budget` in the organism file.
    organism = (Path(mlagent.__file__).parent / "organism" / "default.yaml").read_text()
    assert "token_budget: 200000" in organism
    path = tmp_path / "organism.yaml"
    path.write_text(organism.replace("token_budget: 200000", "token_budget: 30", 1))
    server = make_server(mlagent_organism_path=str(path)).start()
    token = fake_hub.user_token("cal")
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "a", "status": "pending"}]})]),
                  Reply(text="planned"))  # 18 tokens each: the second call starts at 18 < 30
    with server.client(token) as c:
        first = c.post("/v1/responses", json={"input": "x"}).json()
        assert first["status"] == "completed"
        second = c.post("/v1/responses", json={"input": "y", "previous_response_id": first["id"]}).json()
        assert second["status"] == "failed"
        assert second["error"]["code"] == "thread_token_budget_exceeded"
        assert "36" in second["error"]["message"] and "30" in second["error"]["message"]
        assert len(fake_llm.requests) == 2
        info = c.get(f"/api/v1/usage/threads/{first['session_id']}").json()
    assert info["is_exhausted"] is True and info["remaining"] == 0 and info["percent_used"] == 120.0


def test_model_calls_a_tool_makes_itself_are_logged_under_their_agent(make_server, fake_hub, fake_llm, tmp_path):
    server = with_job_tool(make_server(mlagent_price_table=price_file(tmp_path, {MODEL: (3.0, 15.0)}))).start()
    token = fake_hub.user_token("dee")
    fake_llm.push(Reply(tool_calls=[("ask_subagent", {"input_tokens": 1000, "output_tokens": 100})]),
                  Reply(text="done"))
    with server.client(token) as c:
        done = c.post("/v1/responses", json={"input": "research"}).json()
        assert done["status"] == "completed"
        research = c.get("/api/v1/usage/agents/research").json()
        main = c.get("/api/v1/usage/agents/ml-agent").json()
        totals = c.get("/api/v1/usage").json()["usage"]["totals"]
        calls = llm_calls(c, done["id"])
    assert [call["agent"] for call in calls] == [None, "research", None]
    assert calls[1]["input_tokens"] == 1000 and calls[1]["cost_usd"] == pytest.approx(research["total_cost"])
    assert done["usage"]["llm_calls"] == 3 and done["usage"]["input_tokens"] == sum(c["input_tokens"] for c in calls)
    assert (research["request_count"], research["prompt_tokens"], research["completion_tokens"]) == (1, 1000, 100)
    assert research["total_cost"] == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    assert main["request_count"] == 2 and totals["request_count"] == 3
    assert done["usage"]["cost"]["inference_usd"] == pytest.approx(totals["total_cost"])


def test_a_delegated_peers_model_calls_are_logged_and_charged(make_server, fake_hub, fake_llm, tmp_path):
    server = make_server(mlagent_price_table=price_file(tmp_path, {MODEL: (3.0, 15.0)})).start()
    token = fake_hub.user_token("eli")
    fake_llm.push(Reply(tool_calls=[("delegate", {"agent": "researcher", "task": "find a dataset"})]),
                  Reply(text="Found: imdb.", input_tokens=500, output_tokens=50),
                  Reply(text="Use imdb."))
    with server.client(token) as c:
        done = c.post("/v1/responses", json={"input": "find data"}).json()
        assert done["status"] == "completed", done
        peer = c.get("/api/v1/usage/agents/researcher").json()
        totals = c.get("/api/v1/usage").json()["usage"]["totals"]
        calls = llm_calls(c, done["id"])
    assert [call["agent"] for call in calls] == [None, "researcher", None]
    assert (peer["request_count"], peer["prompt_tokens"], peer["completion_tokens"]) == (1, 500, 50)
    assert peer["total_cost"] == pytest.approx((500 * 3 + 50 * 15) / 1e6)
    assert totals["request_count"] == 3
    assert done["usage"]["cost"]["inference_usd"] == pytest.approx(totals["total_cost"])
