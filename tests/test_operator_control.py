"""Operator control over HTTP against real server processes: organism reload (add, change,
remove an agent while a turn runs; broken files refused), stop with a turn in flight, and
the LLM credential an injected turn runs with."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import yaml

from mlagent.organism.spec import DEFAULT_PATH

from .fakes.llm import Reply
from .harness import wait_status

OP_KEY = "op-control-key"
BOB_KEY = "bob-control-key"


def op(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": OP_KEY}, timeout=30)


def wait_until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def settled(client: httpx.Client, thread_id: str) -> dict:
    """The thread once its turn is over (or as it stands after the timeout)."""
    wait_until(lambda: client.get(f"/api/v1/threads/{thread_id}").json()["status"] != "active")
    return client.get(f"/api/v1/threads/{thread_id}").json()


def keys_file(tmp_path) -> str:
    path = tmp_path / "keys.yaml"
    path.write_text(f"{BOB_KEY}: bob\n")
    return str(path)


def organism(path, agents: list[dict]) -> None:
    path.write_text(yaml.safe_dump({"name": "test-organism", "agents": agents}))


def default_agents() -> list[dict]:
    return yaml.safe_load(DEFAULT_PATH.read_text())["agents"]


def test_reload_adds_changes_and_removes_agents_while_a_turn_runs(make_server, tmp_path, fake_hub, fake_llm):
    path = tmp_path / "organism.yaml"
    organism(path, default_agents())
    server = make_server(mlagent_organism_path=str(path), mlagent_operator_key=OP_KEY, mlagent_api_keys_file=keys_file(tmp_path),
                         mlagent_inference_api_key="sk-server-key-000").start()
    gate = threading.Event()
    fake_llm.push(Reply(text="research survived the reload", gate=gate))
    try:
        with op(server) as c:
            assert c.get("/api/v1/organism").json()["config_path"] == str(path)
            running = c.post("/api/v1/inject", json={"to": "researcher", "payload": "survey tabular models"}).json()
            thread = running["thread_id"]
            assert wait_until(lambda: len(fake_llm.requests) == 1)  # the turn is running, held inside the LLM call
            assert c.get(f"/api/v1/threads/{thread}").json()["status"] == "active"

            agents = default_agents()
            agents[0]["description"] = "The main agent, reconfigured."
            agents[0]["system_prompt"] = "You are the RECONFIGURED main agent."
            agents[0]["peers"] = ["reviewer"]
            agents = [agents[0], {"name": "reviewer", "description": "Reviews code.", "tools": ["update_plan"],
                                  "peers": ["ml-agent"], "system_prompt": "You are the REVIEWER.",
                                  "token_budget": 1234}]
            organism(path, agents)
            with httpx.Client(base_url=server.url, headers={"X-API-Key": BOB_KEY}) as bob:
                refused = bob.post("/api/v1/organism/reload")
                assert refused.status_code == 403 and refused.json()["details"]["code"] == "operator_required"
            reloaded = c.post("/api/v1/organism/reload")
            assert reloaded.status_code == 200, reloaded.text
            body = reloaded.json()
            assert (body["added"], body["removed"], body["updated"], body["unchanged"]) == \
                (["reviewer"], ["researcher"], ["ml-agent"], [])
            names = [a["name"] for a in c.get("/api/v1/agents").json()["agents"]]
            assert names == ["ml-agent", "reviewer"]
            assert c.get("/api/v1/agents/researcher").status_code == 404
            assert c.get("/api/v1/agents/reviewer").json()["token_budget"] == 1234
            assert c.get("/api/v1/agents/ml-agent").json()["description"] == "The main agent, reconfigured."
            info = c.get("/api/v1/organism").json()
            assert info["reloads"] == 1 and info["name"] == "test-organism"
            gone = c.post("/api/v1/inject", json={"to": "researcher", "payload": "x"})
            assert gone.status_code == 400 and gone.json()["details"]["code"] == "unknown_agent"

            gate.set()  # the researcher's turn, started before the reload, finishes untouched
            detail = settled(c, thread)
            assert detail["status"] == "idle"
            assert detail["messages"][-1]["payload"]["text"] == "research survived the reload"
            assert fake_llm.requests[0].messages[0]["content"].startswith("You are the research sub-agent")

            fake_llm.push(Reply(text="reviewed"))
            new = c.post("/api/v1/inject", json={"to": "reviewer", "payload": "review this"}).json()
            with server.client(fake_hub.user_token("carol")) as carol:
                fake_llm.push(Reply(text="main answer"))
                main = carol.post("/v1/responses", json={"input": "hello"}).json()
                assert main["status"] == "completed"
            reviewer_thread = settled(c, new["thread_id"])
            assert reviewer_thread["messages"][-1]["payload"]["text"] == "reviewed"
            prompts = {r.messages[0]["content"] for r in fake_llm.requests[1:]}
            assert prompts == {"You are the REVIEWER.", "You are the RECONFIGURED main agent."}

            # broken files are refused with the reason; the configuration in force stays
            for text, reason in [("agents: [", "not valid YAML"),
                                 (yaml.safe_dump({"agents": [{"name": "x", "system_prompt": "p",
                                                              "tools": ["no_such_tool"]}]}), "no_such_tool"),
                                 (yaml.safe_dump({"agents": [{"name": "x", "system_prompt": "p", "peers": ["y"]}]}),
                                  "peer 'y'"),
                                 (yaml.safe_dump({"agents": []}), "agents")]:
                path.write_text(text)
                broken = c.post("/api/v1/organism/reload")
                assert broken.status_code == 422, text
                assert broken.json()["details"]["code"] == "invalid_organism"
                assert reason in broken.json()["error"] and "previous configuration stays" in broken.json()["error"]
            assert [a["name"] for a in c.get("/api/v1/agents").json()["agents"]] == ["ml-agent", "reviewer"]
            assert c.get("/api/v1/organism").json()["reloads"] == 1
    finally:
        gate.set()


def test_a_broken_organism_file_stops_the_server_from_starting(make_server, tmp_path):
    path = tmp_path / "organism.yaml"
    organism(path, [{"name": "Bad Name", "system_prompt": "p"}])
    with pytest.raises(RuntimeError) as failed:
        make_server(mlagent_organism_path=str(path)).start()
    assert "organism file" in str(failed.value) and "agents.0.name" in str(failed.value)


def test_stop_lets_the_running_turn_finish_then_shuts_down_cleanly(make_server, tmp_path, fake_hub, fake_llm):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = make_server(data_dir=data_dir, mlagent_operator_key=OP_KEY, mlagent_api_keys_file=keys_file(tmp_path)).start()
    token = fake_hub.user_token("dora")
    gate = threading.Event()
    fake_llm.push(Reply(text="finished during the drain", gate=gate))
    try:
        with server.client(token) as dora, op(server) as c:
            created = dora.post("/v1/responses", json={"input": "long task", "background": True}).json()
            wait_status(dora, created["id"], {"in_progress"})
            assert dora.post("/api/v1/organism/stop").status_code == 403
            stop = c.post("/api/v1/organism/stop")
            assert stop.status_code == 200, stop.text
            assert stop.json()["status"] == "stopping" and stop.json()["running_turns"] == 1
            assert c.get("/api/v1/organism").json()["status"] == "stopping"
            refused = dora.post("/v1/responses", json={"input": "one more"})
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "server_stopping"
            assert c.post("/api/v1/inject", json={"to": "ml-agent", "payload": "x"}).status_code == 503
            ready = c.get("/readyz")  # a load balancer stops sending work at once
            assert ready.status_code == 503 and ready.json()["failed"] == ["accepting_work"], ready.text
            assert server.proc.poll() is None  # still draining: the turn holds it
            gate.set()
        assert server.proc.wait(30) == 0
    finally:
        gate.set()
    assert "stop: drained; 0 unfinished" in server.log()
    again = make_server(data_dir=data_dir).start()
    with again.client(token) as dora:
        done = dora.get(f"/v1/responses/{created['id']}").json()
    assert done["status"] == "completed" and done["output"][-1]["content"][0]["text"] == "finished during the drain"


def test_stop_ends_a_turn_still_running_after_the_grace_period_at_a_safe_point(make_server, tmp_path, fake_hub,
                                                                                 fake_llm):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = make_server(data_dir=data_dir, mlagent_operator_key=OP_KEY, mlagent_stop_grace_seconds="0.2").start()
    token = fake_hub.user_token("erin")
    gate = threading.Event()
    fake_llm.push(Reply(text="too slow", gate=gate))
    try:
        with server.client(token) as erin, op(server) as c:
            created = erin.post("/v1/responses", json={"input": "endless", "background": True}).json()
            wait_status(erin, created["id"], {"in_progress"})
            assert c.post("/api/v1/organism/stop").status_code == 200
        assert server.proc.wait(30) == 0
    finally:
        gate.set()
    assert "stop: drained; 1 unfinished" in server.log()
    again = make_server(data_dir=data_dir).start()
    with again.client(token) as erin:
        done = erin.get(f"/v1/responses/{created['id']}").json()
    assert done["status"] == "incomplete" and done["incomplete_details"]["reason"] == "server_restart"


def test_inject_credentials_caller_token_else_server_key_else_a_clear_error(make_server, tmp_path, fake_hub, fake_llm):
    server = make_server(mlagent_operator_key=OP_KEY, mlagent_api_keys_file=keys_file(tmp_path)).start()
    with httpx.Client(base_url=server.url, headers={"X-API-Key": BOB_KEY}) as bob:
        refused = bob.post("/api/v1/inject", json={"to": "ml-agent", "payload": "hi"})
        assert refused.status_code == 409
        assert refused.json()["details"]["code"] == "no_inference_credential"
        assert "MLAGENT_INFERENCE_API_KEY" in refused.json()["error"]
        assert bob.get("/api/v1/threads").json()["total"] == 0  # nothing half-created
    token = fake_hub.user_token("frank")
    fake_llm.push(Reply(text="ran on frank's token"))
    with server.client(token) as frank:
        out = frank.post("/api/v1/inject", json={"to": "researcher", "payload": {"text": "hi"}}).json()
        done = wait_status(frank, out["response_id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert fake_llm.requests[-1].token == token
