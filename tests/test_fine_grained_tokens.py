"""Fine-grained tokens as the Hub's token page makes them: a permission granted globally or
scoped to the token's own user counts; one scoped to an organization or another user does
not; a refusal names the permission that is missing (issue 13, item 1)."""

from __future__ import annotations

import json
import secrets
import time

import httpx
import pytest

from mlagent.auth.hf_tokens import identity_from_whoami

from .api_servers import client, start_api_server

TRAIN = "".join(json.dumps({"prompt": f"{i}+{i}=", "completion": f" {2 * i}"}) + "\n" for i in range(10))


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    proc = start_api_server(tmp_path_factory.mktemp("fine-grained"), fake_llm, fake_hub,
                            MLAGENT_JOB_POLL_SECONDS="0.05")
    yield proc
    proc.stop()


def bearer(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def fresh(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def test_inference_permission_scoped_to_the_own_user_is_accepted(server, fake_hub, fake_llm):
    token = fake_hub.user_token(fresh("gina"), scoped={"user": ["inference.serverless.write", "repo.content.read"]})
    with bearer(server, token) as c:
        r = c.post("/v1/responses", json={"input": "q"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed"


@pytest.mark.parametrize("scoped", [{"org:acme": ["inference.serverless.write"]},
                                    {"user:someone-else": ["inference.serverless.write"]}])
def test_inference_permission_scoped_elsewhere_is_refused_naming_it(server, fake_hub, fake_llm, scoped):
    token = fake_hub.user_token(fresh("hank"), fine_grained_scopes=["repo.write"], scoped=scoped)
    with bearer(server, token) as c:
        r = c.post("/v1/responses", json={"input": "q"})
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "inference_provider_permission_required"
    assert "'inference.serverless.write'" in err["message"] and "Inference Providers" in err["message"]
    assert fake_llm.requests == []


def test_scoped_job_and_repo_permissions_run_an_hf_fine_tuning_job(server, fake_hub):
    ns = fresh("ivy")
    token = fake_hub.user_token(ns, scoped={"user": ["inference.serverless.write", "repo.write", "job.write"]})
    with bearer(server, token) as c:
        file_id = c.post("/ml-api/files/", files={"file": ("t.jsonl", TRAIN.encode())}).json()["id"]
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "Qwen/Qwen3-0.6B", "training_file": file_id,
                                                      "compute_config": {"instance_type": "cpu-basic"}})
        assert r.status_code == 200, r.text
        for _ in range(400):
            job = c.get(f"/ml-api/fine-tuning-jobs/{r.json()['id']}/").json()
            if job["hub"]["job_id"] or job["status"] == "failed":
                break
            time.sleep(0.05)
    assert job["status"] != "failed", job  # the fake Hub took the token's user-scoped job.write and repo.write
    assert fake_hub.jobs_of(ns)


def test_missing_job_permission_is_named_before_anything_is_uploaded(server, fake_hub):
    ns = fresh("jack")
    token = fake_hub.user_token(ns, scoped={"user": ["repo.write"], "org:acme": ["job.write"]})
    with bearer(server, token) as c:
        file_id = c.post("/ml-api/files/", files={"file": ("t.jsonl", TRAIN.encode())}).json()["id"]
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "Qwen/Qwen3-0.6B", "training_file": file_id,
                                                      "compute_config": {"instance_type": "cpu-basic"}})
    assert r.status_code == 403, r.text
    assert "'job.write'" in r.json()["error"] and "repo.write" not in r.json()["error"]
    assert r.json()["details"]["field"] == "compute_config.instance_type"
    assert not fake_hub.jobs_of(ns) and not [k for k in fake_hub.repos if k[1].startswith(f"{ns}/")]


def test_whoami_matching_by_id_and_case_insensitive_name():
    base = {"type": "user", "id": "u1", "name": "Kim"}

    def token(*scoped):
        return {**base, "auth": {"accessToken": {"role": "fineGrained",
                                                 "fineGrained": {"global": [], "scoped": list(scoped)}}}}

    by_id = identity_from_whoami(token({"entity": {"_id": "u1", "type": "user", "name": "renamed"},
                                        "permissions": ["job.write"]}), "hf_x")
    assert by_id.missing("job.write", "repo.write") == ["repo.write"]
    by_name = identity_from_whoami(token({"entity": {"type": "user", "name": "kim"},
                                          "permissions": ["inference.serverless.write"]}), "hf_x")
    assert by_name.can_use_inference
    classic_read = identity_from_whoami({**base, "auth": {"accessToken": {"role": "read"}}}, "hf_x")
    assert classic_read.can_use_inference and classic_read.missing("job.write") == ["job.write"]


def test_the_job_tool_names_the_missing_job_permission(agent_server, fake_hub, fake_llm):
    from .agent_support import script
    from .harness import wait_status

    ns = fresh("kate")
    token = fake_hub.user_token(ns, scoped={"user": ["inference.serverless.write", "repo.write"],
                                            "org:acme": ["job.write"]})
    script(fake_llm, [("hf_job_launch", {"script": "print(1)", "flavor": "cpu-basic", "timeout": "5m"})], "ok")
    with agent_server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "run it", "background": True}).json()["id"]
        done = wait_status(c, rid, {"completed", "failed", "incomplete"})
    out = next(i["output"] for i in done["output"] if i["type"] == "mcp_call" and i["name"] == "hf_job_launch")
    assert "lacks the 'job.write' permission" in out, out
    assert not fake_hub.jobs_of(ns)


def test_an_hf_fine_tuning_job_has_logs_and_events(server, fake_hub):
    """The hf backend's logs come from the Hub job (with the owner's token); its events from the record."""
    ns = fresh("lena")
    token = fake_hub.user_token(ns)
    with bearer(server, token) as c, client(server) as keyed:
        file_id = c.post("/ml-api/files/", files={"file": ("t.jsonl", TRAIN.encode())}).json()["id"]
        job_id = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "Qwen/Qwen3-0.6B", "training_file": file_id,
                                                           "compute_config": {"instance_type": "cpu-basic"}}).json()["id"]
        deadline = time.monotonic() + 30
        while c.get(f"/ml-api/fine-tuning-jobs/{job_id}/").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        hub_job = c.get(f"/ml-api/fine-tuning-jobs/{job_id}/").json()["hub"]["job_id"]
        logs = c.get(f"/ml-api/fine-tuning-jobs/{job_id}/logs/")
        events = c.get(f"/ml-api/fine-tuning-jobs/{job_id}/events/").json()["data"]
        model = c.get(f"/ml-api/fine-tuning-jobs/{job_id}/model/")
        assert keyed.get(f"/ml-api/fine-tuning-jobs/{job_id}/logs/").status_code == 404  # not the key's account
    assert logs.status_code == 200 and f"jobs:logs:{hub_job}" in fake_hub.calls
    assert logs.text == "\n".join(line for line, _ in fake_hub.jobs[hub_job]["logs"][-1000:])
    assert events[0]["message"].startswith("Created fine-tuning job") and events[-1]["data"]["status"] == "succeeded"
    assert model.status_code == 409 and model.json()["details"]["code"] == "model_on_hub"
