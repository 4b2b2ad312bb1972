"""The hf fine-tuning backend over the real server: an HF Jobs flavor as `instance_type`
runs a TRL SFT job in the caller's namespace with the caller's token (fake Hub, real HTTP),
through REST and gRPC; the token is never at rest."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import grpc
import httpx
import pytest

from mlagent.grpc import agent_runtime_pb2 as pb, agent_runtime_pb2_grpc as pb_grpc

from .api_servers import client, start_api_server, wait_job
from .conftest import PG_URL
from .harness import create_pg_database, drop_pg_database

TRAIN = "".join(json.dumps({"prompt": f"What is {i} plus {i}?", "completion": f" {2 * i}"}) + "\n" for i in range(40))
VALID = "".join(json.dumps({"messages": [{"role": "user", "content": f"{i}+{i}"},
                                         {"role": "assistant", "content": str(2 * i)}]}) + "\n" for i in range(5))
BASE = "Qwen/Qwen3-0.6B"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub, database):
    """On SQLite (the token check reads the database file), and on PostgreSQL when configured."""
    extra = {"MLAGENT_DATABASE_URL": create_pg_database(PG_URL)} if database == "postgresql" else {}
    proc = start_api_server(tmp_path_factory.mktemp("ft-hf"), fake_llm, fake_hub, MLAGENT_JOB_POLL_SECONDS="0.05",
                            **extra)
    yield proc
    proc.stop()
    if extra:
        drop_pg_database(PG_URL, extra["MLAGENT_DATABASE_URL"])


def user(fake_hub, name: str) -> tuple[str, str]:
    """A fresh HF account (the fake hub lives for the session; each run gets its own namespace)."""
    ns = f"{name}-{secrets.token_hex(3)}"
    return ns, fake_hub.user_token(ns)


def bearer(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def upload(c: httpx.Client, text: str, name: str = "train.jsonl") -> str:
    r = c.post("/ml-api/files/", files={"file": (name, text.encode())})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def wait_for(c: httpx.Client, job_id: str, check, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = c.get(f"/ml-api/fine-tuning-jobs/{job_id}/").json()
        if check(job):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def hf_job(fake_hub, namespace: str) -> dict:
    (job_id,) = fake_hub.jobs_of(namespace)
    return fake_hub.jobs[job_id]


def at_rest(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())


def test_hf_job_trains_in_the_callers_namespace(server, fake_hub):
    ns, token = user(fake_hub, "ft-alice")
    profile = fake_hub.job_profiles[ns] = {"gate": "SCHEDULING", "steps": 3}
    with bearer(server, token) as c:
        train, valid = upload(c, TRAIN), upload(c, VALID, "valid.jsonl")
        r = c.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": BASE, "training_file": train, "validation_file": valid, "suffix": "adder",
            "compute_config": {"instance_type": "a10g-small", "epochs": 2}})
        assert r.status_code == 200, r.text
        created = r.json()
        assert created["status"] == "created" and created["backend"] == "hf" and created["fine_tuned_model"] is None
        assert created["estimated_cost_usd"] == 1.0  # a10g-small 1.00 USD/h × the 3600 s default timeout
        assert created["compute_config"]["epochs"] == 2 and created["compute_config"]["learning_rate"] == 2e-5
        hub = created["hub"]
        assert hub["namespace"] == ns and hub["flavor"] == "a10g-small"
        assert hub["model_repo"].startswith(f"{ns}/Qwen3-0.6B-adder-")

        queued = wait_for(c, created["id"], lambda j: j["status"] != "created")
        assert queued["status"] == "queued", queued
        dataset = fake_hub.repos[("dataset", hub["dataset_repo"])]
        assert dataset["private"] and dataset["owner"] == ns
        assert dataset["files"]["train.jsonl"] == TRAIN.encode()
        assert dataset["files"]["validation.jsonl"] == VALID.encode()
        job = hf_job(fake_hub, ns)
        assert queued["hub"]["job_id"] == job["id"] and job["spec"]["flavor"] == "a10g-small"
        command = job["spec"]["command"]
        assert command[4:6] == ["trl", "sft"]
        for flag, value in (("--model_name_or_path", BASE), ("--dataset_name", hub["dataset_repo"]),
                            ("--hub_model_id", hub["model_repo"]), ("--num_train_epochs", "2"),
                            ("--dataset_test_split", "validation")):
            assert command[command.index(flag) + 1] == value
        assert "--push_to_hub" in command and job["spec"]["secrets"]["HF_TOKEN"] == token
        assert job["spec"]["labels"] == {"mlagent-finetune": created["id"], "name": f"mlagent-{created['id']}"}

        profile["gate"] = "RUNNING"
        running = wait_for(c, created["id"], lambda j: j["status"] == "running" and j["metrics"])
        assert running["metrics"]["loss"] > 0 and running["fine_tuned_model"] is None

        profile["gate"] = None
        done = wait_job(c, created["id"])
    assert done["status"] == "succeeded", done
    assert done["fine_tuned_model"] == hub["model_repo"]
    model = fake_hub.repos[("model", hub["model_repo"])]
    assert model["private"] and model["owner"] == ns and "model.safetensors" in model["files"]
    m = done["metrics"]
    assert m["loss"] < running["metrics"]["loss"] and m["eval_loss"] > 0 and m["accuracy"] == 0.71
    assert m["epoch"] == 2 and 0 < m["train_accuracy"] <= 1
    assert done["cost_usd"] is not None and 0 < done["cost_usd"] <= done["estimated_cost_usd"]
    assert token.encode() not in at_rest(server.data_dir)
    assert token not in server.log()


def test_chained_job_and_failure_reason(server, fake_hub):
    ns, token = user(fake_hub, "ft-dave")
    fake_hub.job_profiles[ns] = {"scheduling": 1, "steps": 2}
    with bearer(server, token) as c:
        train = upload(c, TRAIN)
        first = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": BASE, "training_file": train,
                                                          "compute_config": {"instance_type": "t4-small"}}).json()
        done = wait_job(c, first["id"])
        assert done["status"] == "succeeded", done
        # the pushed model is a Hub model of the caller: it can be fine-tuned again
        fake_hub.job_profiles[ns] = {"scheduling": 1, "steps": 2, "error": "CUDA out of memory"}
        second = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": done["fine_tuned_model"], "training_file": train,
                                                           "compute_config": {"instance_type": "t4-small"}})
        assert second.status_code == 200, second.text
        failed = wait_job(c, second.json()["id"])
    assert failed["status"] == "failed" and "CUDA out of memory" in failed["error"]
    assert failed["fine_tuned_model"] is None and failed["metrics"]["loss"] > 0


def test_launch_refused_by_the_hub_fails_with_its_reason(server, fake_hub):
    ns, token = user(fake_hub, "ft-frank")
    fake_hub.no_credits.add(ns)
    with bearer(server, token) as c:
        job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": BASE, "training_file": upload(c, TRAIN),
                                                        "compute_config": {"instance_type": "h200"}}).json()
        failed = wait_job(c, job["id"])
    assert failed["status"] == "failed" and "402" in failed["error"] and "credits" in failed["error"]
    assert failed["hub"]["job_id"] is None and ("dataset", failed["hub"]["dataset_repo"]) in fake_hub.repos


def test_cancel_calls_the_hub(server, fake_hub):
    ns, token = user(fake_hub, "ft-bob")
    fake_hub.job_profiles[ns] = {"gate": "SCHEDULING"}
    with bearer(server, token) as c, client(server, "key-bob") as key_bob:
        job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": BASE, "training_file": upload(c, TRAIN),
                                                        "compute_config": {"instance_type": "cpu-basic"}}).json()
        queued = wait_for(c, job["id"], lambda j: j["status"] == "queued")
        assert key_bob.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").status_code == 404
        r = c.post(f"/ml-api/fine-tuning-jobs/{job['id']}/cancel/")
        assert r.json() == {"status": "success", "message": f"Job {job['id']} cancelled"}
        hub_job = queued["hub"]["job_id"]
        assert f"jobs:cancel:{hub_job}" in fake_hub.calls and fake_hub.jobs[hub_job]["stage"] == "CANCELED"
        after = wait_for(c, job["id"], lambda j: j["cost_usd"] is not None)
        assert after["status"] == "cancelled"
        again = c.post(f"/ml-api/fine-tuning-jobs/{job['id']}/cancel/")
        assert again.status_code == 400 and again.json()["details"]["field"] == "job_id"


def test_api_key_caller_is_told_an_hf_token_is_needed(server, fake_hub):
    with client(server) as c:
        train = upload(c, TRAIN)
        r = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": BASE, "training_file": train,
                                                      "compute_config": {"instance_type": "a10g-small"}})
    assert r.status_code == 403, r.text
    assert r.json()["details"]["field"] == "compute_config.instance_type"
    assert "Hugging Face token" in r.json()["error"] and "Authorization: Bearer" in r.json()["error"]


@pytest.mark.parametrize("body, field, words", [
    ({"model_id": BASE, "compute_config": {"instance_type": "g4dn.xlarge"}}, "compute_config.instance_type",
     "a10g-small"),
    ({"model_id": "nobody/no-such-model", "compute_config": {"instance_type": "t4-small"}}, "model_id", "not found"),
    ({"model_id": BASE, "training_file": "PLAIN", "compute_config": {"instance_type": "t4-small"}}, "training_file",
     "JSON"),
])
def test_invalid_hf_requests_name_the_field(server, fake_hub, body, field, words):
    ns, token = user(fake_hub, "ft-erin")
    with bearer(server, token) as c:
        plain = upload(c, "just some words\n", "notes.txt")
        body = {"training_file": upload(c, TRAIN), **body}
        if body["training_file"] == "PLAIN":
            body["training_file"] = plain
        r = c.post("/ml-api/fine-tuning-jobs/", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == field and words in r.json()["error"]
    assert fake_hub.jobs_of(ns) == []


def test_grpc_hf_job_with_authorization_metadata(server, fake_hub):
    ns, token = user(fake_hub, "ft-grace")
    fake_hub.job_profiles[ns] = {"scheduling": 1, "steps": 2}
    with bearer(server, token) as c:
        train = upload(c, TRAIN)
    meta = (("authorization", f"Bearer {token}"),)
    with grpc.insecure_channel(server.grpc_target) as ch:
        ml = pb_grpc.MLServiceStub(ch)
        job = ml.CreateFineTuningJob(pb.CreateFineTuningJobRequest(
            model_id=BASE, training_file=train, compute_config={"instance_type": "l4x1", "epochs": "1"}), metadata=meta)
        assert job.status == "created"
        deadline = time.monotonic() + 30
        while (got := ml.GetFineTuningJob(pb.GetFineTuningJobRequest(job_id=job.id), metadata=meta)).status not in (
                "succeeded", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got.status == "succeeded", got
        assert got.fine_tuned_model.startswith(f"{ns}/Qwen3-0.6B-ft-") and got.metrics["loss"] > 0
        assert hf_job(fake_hub, ns)["spec"]["flavor"] == "l4x1"
        with pytest.raises(grpc.RpcError) as denied:  # an API-key caller: told to bring an HF token
            ml.CreateFineTuningJob(pb.CreateFineTuningJobRequest(
                model_id=BASE, training_file=train, compute_config={"instance_type": "l4x1"}),
                metadata=(("x-api-key", "key-alice"),))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "Hugging Face token" in denied.value.details()
        with pytest.raises(grpc.RpcError) as bad:
            ml.GetFineTuningJob(pb.GetFineTuningJobRequest(job_id=job.id), metadata=(("authorization", "Bearer nope"),))
        assert bad.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_unfinished_job_resumes_when_its_owner_reads_it_after_a_restart(make_server, fake_hub):
    ns, token = user(fake_hub, "ft-carol")
    profile = fake_hub.job_profiles[ns] = {"gate": "SCHEDULING", "steps": 2}
    server = make_server(mlagent_grpc_port="0", mlagent_job_poll_seconds="0.05").start()
    with bearer(server, token) as c:
        job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": BASE, "training_file": upload(c, TRAIN),
                                                        "compute_config": {"instance_type": "a10g-small"}}).json()
        wait_for(c, job["id"], lambda j: j["status"] == "queued")
    server.kill()
    profile["gate"] = None  # the HF job runs on at the Hub while the server is down
    server.start()
    with bearer(server, token) as c:
        done = wait_job(c, job["id"])
    assert done["status"] == "succeeded" and done["fine_tuned_model"] == job["hub"]["model_repo"]
    assert token.encode() not in at_rest(server.data_dir) and token not in server.log()


def test_metrics_are_read_from_trainer_log_lines():
    """Both ways transformers prints its log dicts (floats, or formatted strings), amid noise."""
    from mlagent.finetune.trl_job import metrics_from_logs

    lines = ["Generating train split: 40 examples [00:00, 5012.34 examples/s]",
             "{'loss': 2.1, 'grad_norm': 3.2, 'learning_rate': 2e-05, 'mean_token_accuracy': 0.41, 'epoch': 0.5}",
             "\r 50%|#####     | 5/10 [00:03<00:03] {'loss': '1.734', 'grad_norm': '2.9', 'epoch': '1'}",
             '{"eval_loss": 1.9, "eval_mean_token_accuracy": 0.52, "epoch": 1.0}',
             "{'train_runtime': 31.2, 'train_loss': 1.8, 'epoch': 1.0}", "{'unrelated': 'dict'}"]
    m = metrics_from_logs(lines)
    assert m["loss"] == 1.734 and m["eval_loss"] == 1.9 and m["accuracy"] == 0.52
    assert m["train_accuracy"] == 0.41 and m["train_loss"] == 1.8 and m["epoch"] == 1.0 and "unrelated" not in m
    assert metrics_from_logs(["{'train_runtime': 3.0, 'train_loss': 0.9}"])["loss"] == 0.9
