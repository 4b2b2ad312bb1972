"""Seed 001's /api and /ninja-api surfaces against the real server: tasks are agent turns
(context reaches the model, `tools` restricts the tool set), users, errors, CORS."""

from __future__ import annotations

import httpx
import pytest

from .api_servers import SERVER_LLM_KEY, client, start_api_server, wait_task
from .fakes.llm import Reply


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    proc = start_api_server(tmp_path_factory.mktemp("api"), fake_llm, fake_hub)
    yield proc
    proc.stop()


def test_roots(server):
    with client(server) as c:
        assert c.get("/api/").json() == {"status": "online", "version": "1.0.0",
                                         "message": "Agent Runtime API is running"}
        assert c.get("/ninja-api/").json() == {"status": "online", "version": "1.0.0",
                                               "message": "Agent Runtime API is running",
                                               "pydantic_models_available": True}


@pytest.mark.parametrize("headers, code", [({}, "missing_api_key"), ({"X-API-Key": "nope"}, "invalid_api_key")])
@pytest.mark.parametrize("path", ["/api/", "/api/users/", "/ninja-api/", "/ml-api/models/"])
def test_bad_key_is_401_with_seed_error_body(server, headers, code, path):
    r = httpx.get(server.url + path, headers=headers)
    assert r.status_code == 401
    body = r.json()
    assert set(body) == {"error", "details"} and "API key" in body["error"]
    assert body["details"]["code"] == code


@pytest.mark.parametrize("prefix", ["/api", "/ninja-api"])
def test_task_runs_as_agent_turn_with_context_and_tools(server, fake_llm, prefix):
    fake_llm.push(Reply(text=f"Component written via {prefix}"))
    with client(server) as c:
        r = c.post(f"{prefix}/tasks/", json={"prompt": "Create a React component",
                                             "context": {"project": "e-commerce-site", "language": "typescript"},
                                             "tools": ["update_plan"]})
        assert r.status_code == 200, r.text
        accepted = r.json()
        assert accepted["status"] == "accepted" and accepted["message"] == "Task submitted for execution"
        done = wait_task(c, accepted["task_id"], prefix)
    assert done == {"task_id": accepted["task_id"], "status": "completed",
                    "result": f"Component written via {prefix}", "error": None, "created_at": done["created_at"],
                    "pending_approval": None}
    sent = fake_llm.requests[-1]
    assert sent.token == SERVER_LLM_KEY  # the server's LLM credential, not the API key
    text = "\n".join(str(m.get("content")) for m in sent.messages)
    assert "project: e-commerce-site" in text and "language: typescript" in text
    assert sent.messages[-1] == {"role": "user", "content": "Create a React component"}
    assert [t["function"]["name"] for t in sent.body.get("tools", [])] == ["update_plan"]


def test_capability_names_restrict_tools(server, fake_llm):
    """The seed's capability names are known and stand for real tools of the agent (the
    search ones here, none that runs code); the plan tool is the only tool neither names."""
    fake_llm.push(Reply(text="ok"))
    with client(server) as c:
        r = c.post("/api/tasks/", json={"prompt": "search docs", "tools": ["documentation-search"]})
        assert r.status_code == 200, r.text
        assert wait_task(c, r.json()["task_id"])["status"] == "completed"
    names = {t["function"]["name"] for t in fake_llm.requests[-1].body.get("tools", [])}
    assert {"hub_search", "paper_search", "paper_details", "dataset_inspect", "update_plan"} <= names, names
    assert not names & {"run_python", "run_command", "write_file", "edit_file"}, names


def test_unknown_tools_are_400_naming_them(server):
    with client(server) as c:
        r = c.post("/api/tasks/", json={"prompt": "x", "tools": ["update_plan", "rm-rf", "teleport"]})
    assert r.status_code == 400
    body = r.json()
    assert "'rm-rf'" in body["error"] and "'teleport'" in body["error"] and "update_plan" not in body["error"].split(
        "Known")[0]
    assert body["details"]["field"] == "tools"


@pytest.mark.parametrize("payload, field", [({}, "prompt"), ({"prompt": "  "}, "prompt"),
                                            ({"prompt": "x", "tools": "a"}, "tools"),
                                            ({"prompt": "x", "bogus": 1}, "bogus")])
def test_invalid_task_body_is_400_naming_field(server, payload, field):
    with client(server) as c:
        r = c.post("/api/tasks/", json=payload)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"] and field in r.json()["details"]


def test_malformed_json_is_400(server):
    with client(server) as c:
        r = c.post("/api/tasks/", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_task_failure_is_reported(server, fake_llm):
    fake_llm.push(Reply(status=500))
    with client(server) as c:
        r = c.post("/api/tasks/", json={"prompt": "fail please"})
        done = wait_task(c, r.json()["task_id"])
    assert done["status"] == "failed" and done["error"]


def test_other_accounts_task_is_404(server, fake_llm):
    fake_llm.push(Reply(text="mine"))
    with client(server, "key-alice") as alice, client(server, "key-bob") as bob:
        task_id = alice.post("/api/tasks/", json={"prompt": "private"}).json()["task_id"]
        r = bob.get(f"/api/tasks/{task_id}")
        assert r.status_code == 404 and set(r.json()) == {"error", "details"}
        assert bob.get("/api/tasks/resp_missing").status_code == 404
        wait_task(alice, task_id)


def test_users_operator_sees_all_others_themselves(server, fake_llm):
    with client(server, "key-bob") as bob:  # bob becomes known by submitting a task
        fake_llm.push(Reply(text="hi"))
        wait_task(bob, bob.post("/api/tasks/", json={"prompt": "hi"}).json()["task_id"])
        mine = bob.get("/api/users/").json()
    assert [u["username"] for u in mine] == ["bob"]
    assert set(mine[0]) >= {"id", "username", "email"} and isinstance(mine[0]["id"], int)
    with client(server, "key-ops") as ops:
        everyone = {u["username"] for u in ops.get("/api/users/").json()}
    assert {"alice", "bob"} <= everyone


def test_cors_preflight(server):
    r = httpx.options(server.url + "/api/tasks/", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
    other = httpx.options(server.url + "/api/tasks/", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers
    simple = httpx.get(server.url + "/api/", headers={"Origin": "https://app.example.com", "X-API-Key": "key-alice"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
