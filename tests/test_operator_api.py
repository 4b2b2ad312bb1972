"""The operator API over HTTP: organism, capabilities, agents, threads, messages, pause,
kill and inject, with the operator / ordinary-caller split (one server per module)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from .conftest import PG_URL
from .fakes.llm import Reply
from .harness import ServerProcess, create_pg_database, drop_pg_database, wait_status

OP_KEY = "op-secret-key-123"
BOB_KEY = "bob-key-456"
SERVER_LLM_KEY = "sk-server-llm-key-789"

# The default researcher's tool patterns over the agent's tools (issue 3): read-only lookups only.
RESEARCHER_TOOLS = ["dataset_inspect", "hub_repo_details", "hub_search", "paper_details", "paper_search", "research",
                    "update_plan"]


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub, database):
    data_dir = tmp_path_factory.mktemp("operator")
    keys = data_dir / "keys.yaml"
    keys.write_text(f"{BOB_KEY}: bob\n")
    env = {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
           "MLAGENT_OPERATOR_KEY": OP_KEY, "MLAGENT_API_KEYS_FILE": str(keys),
           "MLAGENT_INFERENCE_API_KEY": SERVER_LLM_KEY}
    url = create_pg_database(PG_URL) if database == "postgresql" else None
    if url:
        env["MLAGENT_DATABASE_URL"] = url
    proc = ServerProcess(data_dir, env).start()
    yield proc
    proc.stop()
    if url:
        drop_pg_database(PG_URL, url)


@pytest.fixture(scope="module")
def alice_token(fake_hub):
    return fake_hub.user_token("alice")


def op(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": OP_KEY}, timeout=30)


def bob(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": BOB_KEY}, timeout=30)


def wait_until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def wait_thread_status(client: httpx.Client, thread_id: str, status: str) -> dict:
    return wait_until(lambda: (b := client.get(f"/api/v1/threads/{thread_id}").json())["status"] == status and b) or \
        client.get(f"/api/v1/threads/{thread_id}").json()


def test_every_route_needs_credentials(server):
    routes = [("GET", "/api/v1/organism"), ("GET", "/api/v1/agents"), ("GET", "/api/v1/threads"),
              ("GET", "/api/v1/messages"), ("GET", "/api/v1/capabilities"), ("POST", "/api/v1/inject"),
              ("POST", "/api/v1/organism/reload"), ("POST", "/api/v1/organism/stop")]
    with httpx.Client(base_url=server.url) as anon:
        for method, path in routes:
            r = anon.request(method, path)
            assert r.status_code == 401, (path, r.text)
            assert r.json()["details"]["code"] == "missing_api_key"
        assert anon.get("/api/v1/agents", headers={"X-API-Key": "wrong"}).status_code == 401


def test_organism_overview_and_sanitised_config(server, alice_token):
    with op(server) as c:
        info = c.get("/api/v1/organism").json()
        assert info["agents"] == ["ml-agent", "researcher"] and info["agent_count"] == 2
        assert info["status"] == "running" and info["scope"] == "all"
        assert info["config_path"].endswith("default.yaml")
        assert info["capability_count"] >= 1
        config = c.get("/api/v1/organism/config")
    assert config.status_code == 200
    text = config.text
    for secret in (OP_KEY, BOB_KEY, SERVER_LLM_KEY, alice_token):
        assert secret not in text
    body = config.json()
    assert [a["name"] for a in body["organism"]["agents"]] == ["ml-agent", "researcher"]
    assert body["server"]["inference_server_key_configured"] is True
    assert body["organism"]["agents"][0]["token_budget"] == 200000
    with server.client(alice_token) as c:
        assert c.get("/api/v1/organism").json()["scope"] == "own"


def test_capabilities_list_and_detail_with_a_valid_example(server):
    with bob(server) as c:
        listed = c.get("/api/v1/capabilities").json()
        assert listed["count"] == len(listed["capabilities"]) >= 1
        plan = next(x for x in listed["capabilities"] if x["name"] == "update_plan")
        assert plan["agents"] == ["ml-agent", "researcher"] and plan["description"]
        detail = c.get("/api/v1/capabilities/update_plan").json()
        missing = c.get("/api/v1/capabilities/no_such_tool")
    assert detail["parameters"]["required"] == ["steps"]
    example = detail["example"]
    assert example["name"] == "update_plan"
    step = example["arguments"]["steps"][0]
    assert isinstance(step["step"], str) and step["status"] in ("pending", "in_progress", "completed")
    assert missing.status_code == 404 and "no_such_tool" in missing.json()["error"]


def test_agents_list_get_config_schema_and_404s(server):
    with bob(server) as c:
        listed = c.get("/api/v1/agents").json()
        assert listed["count"] == 2
        main = next(a for a in listed["agents"] if a["name"] == "ml-agent")
        assert main["state"] == "idle" and main["peers"] == ["researcher"] and "update_plan" in main["tools"]
        assert main["model"] and main["token_budget"] == 200000 and main["is_agent"] is True
        one = c.get("/api/v1/agents/researcher").json()
        assert one["peers"] == ["ml-agent"] and one["token_budget"] == 50000
        config = c.get("/api/v1/agents/researcher/config").json()
        assert config["system_prompt"].startswith("You are the research sub-agent")
        assert config["resolved_tools"] == one["tools"] and config["is_agent"] is True
        schema = c.get("/api/v1/agents/ml-agent/schema")
        assert schema.status_code == 200
        assert schema.json()["contentType"] == "application/schema+json"
        assert schema.json()["schema"]["required"] == ["text"]
        for path in ("", "/config", "/schema"):
            r = c.get(f"/api/v1/agents/ghost{path}")
            assert r.status_code == 404, path
            assert "ghost" in r.json()["error"]
        for action in ("pause", "resume"):
            assert c.post(f"/api/v1/agents/ghost/{action}").status_code == 403  # not an operator
    with op(server) as c:
        assert c.post("/api/v1/agents/ghost/pause").status_code == 404


def test_threads_and_messages_are_scoped_filtered_and_paginated(server, alice_token, fake_llm):
    fake_llm.push(Reply(text="first answer"), Reply(text="second answer"), Reply(text="bob's answer"))
    with server.client(alice_token) as alice:
        r1 = alice.post("/v1/responses", json={"input": "question one"}).json()
        assert r1["status"] == "completed", r1
        r2 = alice.post("/v1/responses", json={"input": "question two", "previous_response_id": r1["id"]}).json()
        assert r2["status"] == "completed", r2
    thread = r1["session_id"]
    with bob(server) as b:
        injected = b.post("/api/v1/inject", json={"to": "researcher", "payload": {"text": "find datasets"}})
        assert injected.status_code == 200, injected.text
        bob_thread = injected.json()["thread_id"]
        assert wait_thread_status(b, bob_thread, "idle")["status"] == "idle"
    # bob has no HF token: the injected turn ran on the server's own LLM key
    assert fake_llm.requests[-1].token == SERVER_LLM_KEY

    with server.client(alice_token) as alice:
        mine = alice.get("/api/v1/threads").json()
        assert [t["id"] for t in mine["threads"]] == [thread]
        t = mine["threads"][0]
        assert t["status"] == "idle" and t["agent"] == "ml-agent" and t["turn_count"] == 2 and t["account"] == "alice"
        detail = alice.get(f"/api/v1/threads/{thread}").json()
        assert detail["message_count"] == 4
        kinds = [(m["direction"], m["from_id"], m["to_id"]) for m in detail["messages"]]
        assert kinds == [("inbound", "alice", "ml-agent"), ("outbound", "ml-agent", "alice")] * 2
        assert detail["messages"][0]["payload"]["input"] == "question one"
        assert detail["messages"][3]["payload"]["text"] == "second answer"
        assert alice.get(f"/api/v1/threads/{bob_thread}").status_code == 404
        assert alice.get(f"/api/v1/threads/{bob_thread}/messages").status_code == 404
        assert alice.get("/api/v1/messages").json()["total"] == 4
        page = alice.get(f"/api/v1/threads/{thread}/messages", params={"limit": 1, "offset": 3}).json()
        assert page["count"] == 1 and page["total"] == 4 and page["offset"] == 3 and page["limit"] == 1
        assert page["messages"][0]["payload"]["text"] == "second answer"
        assert alice.get(f"/api/v1/threads/{thread}/messages", params={"offset": 10}).json()["messages"] == []

    with bob(server) as b:
        assert [t["id"] for t in b.get("/api/v1/threads").json()["threads"]] == [bob_thread]
        assert b.get(f"/api/v1/threads/{thread}").status_code == 404
        msgs = b.get("/api/v1/messages").json()
        assert msgs["total"] == 2
        assert msgs["messages"][0]["payload"] == {"text": "find datasets"}
        assert msgs["messages"][1]["payload"]["text"] == "bob's answer"
        assert msgs["messages"][1]["from_id"] == "researcher" and msgs["messages"][1]["to_id"] == "bob"

    with op(server) as c:
        everything = c.get("/api/v1/threads").json()
        ids = [t["id"] for t in everything["threads"]]
        assert {thread, bob_thread} <= set(ids) and everything["total"] == len(ids)
        assert ids.index(bob_thread) < ids.index(thread)  # newest first
        by_agent = c.get("/api/v1/threads", params={"agent": "researcher"}).json()
        assert [t["id"] for t in by_agent["threads"]] == [bob_thread]
        assert by_agent["threads"][0]["participants"] == ["researcher"]
        assert c.get("/api/v1/threads", params={"agent": "nobody"}).json()["total"] == 0
        idle = c.get("/api/v1/threads", params={"status": "idle"}).json()
        assert {thread, bob_thread} <= {t["id"] for t in idle["threads"]}
        assert c.get("/api/v1/threads", params={"status": "killed"}).json()["total"] == 0
        bad = c.get("/api/v1/threads", params={"status": "sleeping"})
        assert bad.status_code == 400
        assert "sleeping" in bad.json()["error"] and "active" in bad.json()["error"]
        assert bad.json()["details"]["field"] == "status"
        first = c.get("/api/v1/threads", params={"limit": 1}).json()
        second = c.get("/api/v1/threads", params={"limit": 1, "offset": 1}).json()
        assert first["count"] == second["count"] == 1 and first["threads"][0]["id"] != second["threads"][0]["id"]
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
            for path in ("/api/v1/threads", "/api/v1/messages", f"/api/v1/threads/{thread}/messages"):
                r = c.get(path, params=params)
                assert r.status_code == 422, (path, params)
                assert next(iter(params)) in r.json()["details"] and next(iter(params)) in r.json()["error"]
        assert c.get("/api/v1/threads", params={"limit": 100}).status_code == 200
        assert c.get(f"/api/v1/threads/{thread}").json()["account"] == "alice"
        assert c.get("/api/v1/threads/sess_nope").status_code == 404
        assert c.get("/api/v1/threads/sess_nope/messages").status_code == 404
        research = c.get("/api/v1/messages", params={"agent": "researcher"}).json()
        assert research["total"] == 2 and {m["agent"] for m in research["messages"]} == {"researcher"}
        assert c.get("/api/v1/messages").json()["total"] >= 6
        stats = c.get("/api/v1/organism").json()
        assert stats["threads"]["idle"] >= 2 and stats["message_count"] >= 6
        agents = {a["name"]: a for a in c.get("/api/v1/agents").json()["agents"]}
        assert agents["researcher"]["thread_count"] >= 1


def test_inject_into_an_existing_thread_runs_a_real_turn_with_the_threads_token(server, alice_token, fake_llm):
    fake_llm.push(Reply(text="hello alice"), Reply(text="research done"))
    with server.client(alice_token) as alice:
        first = alice.post("/v1/responses", json={"input": "start"}).json()
    thread = first["session_id"]
    with op(server) as c:
        before = c.get("/api/v1/usage/agents/researcher").json()["request_count"]
        r = c.post("/api/v1/inject", json={"to": "researcher", "thread_id": thread,
                                           "payload": {"text": "look up MNIST", "priority": "high"}})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["thread_id"] == thread and out["message_id"] == f"{out['response_id']}:in"
        detail = wait_thread_status(c, thread, "idle")
        assert detail["participants"] == ["ml-agent", "researcher"]
        assert c.get("/api/v1/threads", params={"agent": "researcher"}).json()["total"] >= 1
        # ...and its model call is in the usage totals, under the agent that made it
        researcher = c.get("/api/v1/usage/agents/researcher").json()
        assert researcher["request_count"] == before + 1
        assert c.get(f"/api/v1/usage/threads/{thread}").status_code == 200
    # the injected turn ran as the researcher, on the thread's history, with alice's live token
    request = fake_llm.requests[-1]
    assert request.token == alice_token
    assert request.messages[0]["content"].startswith("You are the research sub-agent")
    assert any(m.get("content") == "hello alice" for m in request.messages)
    assert '"priority": "high"' in request.messages[-1]["content"]
    tools = [t["function"]["name"] for t in request.body.get("tools", [])]
    assert sorted(tools) == RESEARCHER_TOOLS
    last = detail["messages"][-2:]
    assert last[0]["from_id"] == "operator" and last[0]["to_id"] == "researcher"
    assert last[1]["payload"]["text"] == "research done" and last[1]["from_id"] == "researcher"
    with server.client(alice_token) as alice:  # the thread's owner sees the turn on /v1 too
        turn = alice.get(f"/v1/responses/{out['response_id']}").json()
        assert turn["status"] == "completed" and turn["output"][-1]["content"][0]["text"] == "research done"
        assert turn["previous_response_id"] == first["id"]


def test_inject_refuses_unknown_agents_bad_payloads_and_other_accounts_threads(server, alice_token):
    with server.client(alice_token) as alice:
        mine = alice.get("/api/v1/threads").json()["threads"][0]["id"]
        bad = alice.post("/api/v1/inject", json={"to": "ghost", "payload": {"text": "hi"}})
        assert bad.status_code == 400 and "ghost" in bad.json()["error"]
        assert bad.json()["details"]["field"] == "to"
        missing = alice.post("/api/v1/inject", json={"to": "ml-agent", "payload": {"note": 1}})
        assert missing.status_code == 400 and missing.json()["details"]["field"] == "payload.text"
        wrong = alice.post("/api/v1/inject", json={"to": "ml-agent", "payload": {"text": 5}})
        assert wrong.status_code == 400 and "string" in wrong.json()["error"]
        nobody = alice.post("/api/v1/inject", json={"to": "ml-agent", "payload": "x", "thread_id": "sess_nope"})
        assert nobody.status_code == 404
        shape = alice.post("/api/v1/inject", json={"payload": "x"})
        assert shape.status_code == 422 and "to" in shape.json()["details"]
    with bob(server) as b:
        assert b.post("/api/v1/inject", json={"to": "ml-agent", "payload": "x", "thread_id": mine}).status_code == 404
        assert b.post(f"/api/v1/threads/{mine}/kill").status_code == 404


def test_pause_holds_queued_and_new_turns_until_resume(server, alice_token, fake_llm):
    fake_llm.push(Reply(text="after resume"))
    with bob(server) as b:
        assert b.post("/api/v1/agents/ml-agent/pause").status_code == 403
    with op(server) as c, server.client(alice_token) as alice:
        paused = c.post("/api/v1/agents/ml-agent/pause")
        assert paused.status_code == 200 and paused.json() == {"success": True, "agent": "ml-agent", "state": "paused"}
        created = alice.post("/v1/responses", json={"input": "wait for me", "background": True}).json()
        agent = wait_until(lambda: (a := c.get("/api/v1/agents/ml-agent").json())["waiting_turns"] == 1 and a)
        assert agent and agent["state"] == "paused"
        assert c.get("/api/v1/organism").json()["paused_agents"] == ["ml-agent"]
        assert alice.get(f"/v1/responses/{created['id']}").json()["status"] == "queued"
        assert fake_llm.requests == []
        resumed = c.post("/api/v1/agents/ml-agent/resume").json()
        assert resumed["state"] in ("idle", "running")
        done = wait_status(alice, created["id"], {"completed", "failed"})
    assert done["status"] == "completed" and done["output"][-1]["content"][0]["text"] == "after resume"


def test_kill_cancels_the_running_turn_and_closes_the_thread(server, alice_token, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="never finished", gate=gate))
    try:
        with server.client(alice_token) as alice, op(server) as c:
            created = alice.post("/v1/responses", json={"input": "long job", "background": True}).json()
            thread = created["session_id"]
            wait_status(alice, created["id"], {"in_progress"})
            assert c.get("/api/v1/threads", params={"status": "active"}).json()["threads"][0]["id"] == thread
            killed = alice.post(f"/api/v1/threads/{thread}/kill")
            assert killed.status_code == 200, killed.text
            assert killed.json() == {"success": True, "threadId": thread, "cancelled": [created["id"]],
                                     "status": "killed"}
            assert wait_status(alice, created["id"], {"cancelled"})["status"] == "cancelled"
            assert alice.get(f"/api/v1/threads/{thread}").json()["status"] == "killed"
            assert thread in {t["id"] for t in c.get("/api/v1/threads", params={"status": "killed"}).json()["threads"]}
            again = alice.post("/v1/responses", json={"input": "more", "previous_response_id": created["id"]})
            assert again.status_code == 409 and again.json()["error"]["code"] == "session_closed"
            inject = c.post("/api/v1/inject", json={"to": "ml-agent", "payload": "x", "thread_id": thread})
            assert inject.status_code == 409 and inject.json()["details"]["code"] == "thread_closed"
            assert alice.post("/api/v1/threads/sess_nope/kill").status_code == 404
    finally:
        gate.set()


def test_the_main_agent_delegates_to_its_researcher_peer(server, alice_token, fake_llm):
    fake_llm.push(
        Reply(tool_calls=[("delegate", {"agent": "researcher", "task": "Which MNIST variants exist?"})]),
        Reply(text="Fashion-MNIST and KMNIST."),  # the researcher's own loop
        Reply(tool_calls=[("delegate", {"agent": "ml-agent", "task": "loop"})]),  # not a peer of itself
        Reply(text="Use Fashion-MNIST."),
    )
    with server.client(alice_token) as alice:
        done = alice.post("/v1/responses", json={"input": "pick a dataset"}).json()
    assert done["status"] == "completed", done
    outputs = [item["output"] for item in done["output"] if item["type"] == "mcp_call"]
    assert outputs[0] == "Fashion-MNIST and KMNIST."
    assert outputs[1].startswith("Error: 'ml-agent' is not one of your peers")
    assert done["output"][-1]["content"][0]["text"] == "Use Fashion-MNIST."
    assert done["usage"]["llm_calls"] == 4  # the researcher's call is counted on the turn
    main, research = fake_llm.requests[0], fake_llm.requests[1]
    assert "delegate" in [t["function"]["name"] for t in main.body["tools"]]
    assert research.messages[0]["content"].startswith("You are the research sub-agent")
    assert research.messages[1] == {"role": "user", "content": "Which MNIST variants exist?"}
    assert sorted(t["function"]["name"] for t in research.body["tools"]) == RESEARCHER_TOOLS
    assert research.token == alice_token
    with bob(server) as b:
        detail = b.get("/api/v1/capabilities/delegate").json()
    assert detail["agents"] == ["ml-agent"]  # the researcher's patterns do not include it
    assert detail["example"]["arguments"]["agent"] == "researcher"


def test_killing_a_thread_whose_turn_is_held_by_a_pause_releases_it(server, alice_token, fake_llm):
    with op(server) as c, server.client(alice_token) as alice:
        c.post("/api/v1/agents/ml-agent/pause")
        try:
            created = alice.post("/v1/responses", json={"input": "held", "background": True}).json()
            assert wait_until(lambda: c.get("/api/v1/agents/ml-agent").json()["waiting_turns"] == 1)
            killed = c.post(f"/api/v1/threads/{created['session_id']}/kill").json()
            assert killed["cancelled"] == [created["id"]]
            assert alice.get(f"/v1/responses/{created['id']}").json()["status"] == "cancelled"
            assert wait_until(lambda: c.get("/api/v1/agents/ml-agent").json()["waiting_turns"] == 0)
            assert c.get("/api/v1/agents/ml-agent").json()["state"] == "paused"
        finally:
            c.post("/api/v1/agents/ml-agent/resume")
    assert fake_llm.requests == []
