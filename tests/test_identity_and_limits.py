"""Hugging Face token auth, the session limits, idle eviction, and tokens never at rest."""

import threading
import time

import pytest

from .fakes.llm import Reply
from .harness import wait_status


@pytest.fixture(scope="module")
def limited(tmp_path_factory, fake_llm, fake_hub):
    from .harness import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("limited"), {
        "HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
    }).start()
    yield server
    server.stop()


def test_missing_and_invalid_tokens_are_401(limited):
    with limited.client() as c:
        r = c.post("/v1/responses", json={"input": "q"})
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
        r = c.get("/v1/responses/resp_x", headers={"Authorization": "Bearer hf_not_a_real_token"})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"


def test_organization_tokens_are_rejected(limited, fake_hub):
    with limited.client(fake_hub.org_token("acme")) as c:
        r = c.post("/v1/responses", json={"input": "q"})
    assert r.status_code == 401
    assert "Organization" in r.json()["error"]["message"]


def test_fine_grained_token_without_inference_permission_is_403_before_any_session(limited, fake_hub, fake_llm):
    token = fake_hub.user_token("carol", fine_grained_scopes=["repo.write"])
    with limited.client(token) as c:
        r = c.post("/v1/responses", json={"input": "q"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "inference_provider_permission_required"
    assert fake_llm.requests == []
    ok = fake_hub.user_token("carol2", fine_grained_scopes=["inference.serverless.write"])
    with limited.client(ok) as c:
        assert c.post("/v1/responses", json={"input": "q"}).json()["status"] == "completed"


def test_whoami_is_cached_per_token(limited, fake_hub):
    token = fake_hub.user_token("dave")
    with limited.client(token) as c:
        before = fake_hub.whoami_calls
        for _ in range(5):
            c.get("/v1/responses/resp_missing")
    assert fake_hub.whoami_calls - before == 1


def test_session_limit_per_account_and_global_then_idle_eviction_frees_room(make_server, fake_hub, fake_llm):
    limited = make_server(mlagent_max_sessions_per_account="2", mlagent_max_sessions_global="3",
                          mlagent_idle_eviction_seconds="2").start()
    gates = [threading.Event() for _ in range(3)]
    fake_llm.push(*(Reply(text=f"r{i}", gate=g) for i, g in enumerate(gates)))
    erin = limited.client(fake_hub.user_token("erin"))
    frank = limited.client(fake_hub.user_token("frank"))
    ids = [erin.post("/v1/responses", json={"input": f"q{i}", "background": True}).json()["id"] for i in range(2)]
    r = erin.post("/v1/responses", json={"input": "third", "background": True})
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "session_limit_reached"
    assert r.headers["x-should-retry"] == "false"
    # Continuing an existing session is not a new session: allowed once it is idle.
    gates[0].set()
    wait_status(erin, ids[0], {"completed"})
    assert erin.post("/v1/responses", json={"input": "more", "previous_response_id": ids[0],
                                            "background": True}).status_code == 200
    # The global cap (3) counts every account.
    f1 = frank.post("/v1/responses", json={"input": "f", "background": True})
    assert f1.status_code == 200
    r = frank.post("/v1/responses", json={"input": "g", "background": True})
    assert r.status_code == 429
    for g in gates:
        g.set()
    for rid in ids + [f1.json()["id"]]:
        wait_status(erin if rid in ids else frank, rid, {"completed"})
    time.sleep(5)  # idle eviction (2 s here) releases the sessions
    r = frank.post("/v1/responses", json={"input": "after eviction"})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    # An evicted session restores transparently from the database on its next request.
    r = erin.post("/v1/responses", json={"input": "restored", "previous_response_id": ids[1]})
    assert r.status_code == 200 and r.json()["status"] == "completed"
    contents = [m.get("content") for m in fake_llm.requests[-1].messages]
    assert "q1" in contents and contents[-1] == "restored"
    erin.close()
    frank.close()


def test_the_token_is_never_written_to_the_database_or_the_logs(make_server, fake_hub, fake_llm):
    server = make_server().start()
    token = fake_hub.user_token("grace")
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "s", "status": "pending"}]})]),
                  Reply(text="done"))
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "q", "metadata": {"note": "hello"}}).json()["id"]
        assert c.get(f"/v1/responses/{rid}").json()["status"] == "completed"
        c.post("/v1/responses", json={"input": "again", "previous_response_id": rid})
    assert fake_llm.requests[-1].token == token  # it was used, as the caller
    server.stop()
    found = []
    for path in server.data_dir.rglob("*"):
        if path.is_file() and token.encode() in path.read_bytes():
            found.append(path)
    assert found == [], f"token found in {found}"
    assert token not in server.log()
