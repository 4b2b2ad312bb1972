"""A pause outlives a restart: real server processes on the same data dir (and database)
are paused, restarted, resumed and restarted again; a reload that removes an agent drops
its pause, while the others' pauses stay."""

from __future__ import annotations

import time

import httpx
import pytest
import yaml

from mlagent.organism.spec import DEFAULT_PATH

from .conftest import database_params
from .fakes.llm import Reply
from .harness import wait_status

OP_KEY = "op-pause-restart-key"


def wait_until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def states(c: httpx.Client) -> dict[str, str]:
    return {a["name"]: a["state"] for a in c.get("/api/v1/agents").json()["agents"]}


@pytest.mark.parametrize("database", database_params())
def test_a_pause_survives_a_restart_until_resumed(make_server, tmp_path, fake_hub, fake_llm, database):
    path = tmp_path / "organism.yaml"
    agents = yaml.safe_load(DEFAULT_PATH.read_text())["agents"]
    assert [a["name"] for a in agents] == ["ml-agent", "researcher"]
    path.write_text(yaml.safe_dump({"name": "pausing", "agents": agents}))
    settings = dict(mlagent_organism_path=str(path), mlagent_operator_key=OP_KEY,
                    mlagent_inference_api_key="sk-server-key-000")
    first = make_server(database, **settings).start()
    same = dict(data_dir=first.data_dir, database_url=first.env.get("MLAGENT_DATABASE_URL"), **settings)
    token = fake_hub.user_token("paula")

    def op(server) -> httpx.Client:
        return httpx.Client(base_url=server.url, headers={"X-API-Key": OP_KEY}, timeout=30)

    with op(first) as c:
        for name in ("ml-agent", "researcher"):
            assert c.post(f"/api/v1/agents/{name}/pause").json()["state"] == "paused"
        assert c.get("/api/v1/organism").json()["paused_agents"] == ["ml-agent", "researcher"]
        # A reload that drops the researcher drops its pause; the main agent's stays.
        alone = {**agents[0], "peers": []}  # its peer is gone
        path.write_text(yaml.safe_dump({"name": "pausing", "agents": [alone]}))
        assert c.post("/api/v1/organism/reload").json()["removed"] == ["researcher"]
        assert c.get("/api/v1/organism").json()["paused_agents"] == ["ml-agent"]
    first.kill()  # a crash, not a clean stop: the pause was already kept

    path.write_text(yaml.safe_dump({"name": "pausing", "agents": agents}))  # the researcher is back, not paused
    second = make_server(database, **same).start()
    with op(second) as c, second.client(token) as paula:
        assert c.get("/api/v1/organism").json()["paused_agents"] == ["ml-agent"]
        assert states(c) == {"ml-agent": "paused", "researcher": "idle"}
        # A turn routed to the paused agent waits, as a pause does, and the LLM is not called.
        created = paula.post("/v1/responses", json={"input": "wait for me", "background": True}).json()
        assert wait_until(lambda: c.get("/api/v1/agents/ml-agent").json()["waiting_turns"] == 1)
        assert paula.get(f"/v1/responses/{created['id']}").json()["status"] == "queued"
        assert fake_llm.requests == []
        fake_llm.push(Reply(text="after resume"))
        assert c.post("/api/v1/agents/ml-agent/resume").json()["state"] in ("idle", "running")
        done = wait_status(paula, created["id"], {"completed", "failed"})
        assert done["status"] == "completed" and done["output"][-1]["content"][0]["text"] == "after resume"
        assert c.get("/api/v1/organism").json()["paused_agents"] == []
    second.stop()

    third = make_server(database, **same).start()
    with op(third) as c, third.client(token) as paula:
        assert c.get("/api/v1/organism").json()["paused_agents"] == []
        assert states(c) == {"ml-agent": "idle", "researcher": "idle"}
        fake_llm.push(Reply(text="not paused any more"))
        done = paula.post("/v1/responses", json={"input": "go"}).json()
        assert done["status"] == "completed" and done["output"][-1]["content"][0]["text"] == "not paused any more"
