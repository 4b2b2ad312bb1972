"""`/mltraining` on the `ray` job backend: a real local Ray head on loopback (one per test
session), the real server with MLAGENT_JOB_BACKEND=ray, driven over HTTP.

The head is started with its own temporary directory and ports, and stopped by the ids of
the processes it started (never `ray stop`, which would stop every Ray on the machine).
MLAGENT_TEST_RAY_ADDRESS=http://host:port runs the tests against an existing cluster."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from mlagent.sandbox.confine import bwrap_works

from .fakes.serve import free_port
from .harness import ServerProcess
from .mlconnector.client import TRAIN_SCRIPT, api_client, upload, wait_training
from .ray_head import RAY, ray_head
from .test_mlconnector_training import _diabetes_csv

pytestmark = pytest.mark.skipif(not RAY.exists(), reason="the ray CLI is not installed (pip install '.[ray]')")


@pytest.fixture(scope="session")
def ray_address():
    existing = os.environ.get("MLAGENT_TEST_RAY_ADDRESS")
    if existing:
        yield existing
        return
    with ray_head() as address:
        yield address


def _ray_env(address: str, **extra: str) -> dict[str, str]:
    return {"MLAGENT_JOB_BACKEND": "ray", "MLAGENT_RAY_ADDRESS": address, **extra}


@pytest.fixture(scope="module")
def ray_server(ray_address, tmp_path_factory, fake_llm, fake_hub):
    server = ServerProcess(tmp_path_factory.mktemp("ray"), {"HF_ENDPOINT": fake_hub.url,
                           "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, **_ray_env(ray_address)}).start()
    yield server
    server.stop()


def _ray_status(address: str, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(address).get_job_status(job_id).value)


def _model(c, name: str, script: bytes, data: bytes = b"a,b\n1,2\n") -> str:
    mid = c.post("/model/add", json={"modelname": name, "modelkind": "regression",
                                     "hyperparameter": [{"parameter": "alpha", "value": 0.5}]}).json()["id"]
    assert upload(c, mid, "train.py", script, "code").status_code == 201
    assert upload(c, mid, "train.csv", data, "data").status_code == 201
    return mid


def _wait_log(c, training_id: str, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = c.get(f"/mltraining/{training_id}/logs").text
        if text in logs:
            return logs
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the logs of {training_id}: {logs!r}")


def test_training_on_ray_registers_the_model(ray_server, ray_address):
    with api_client(ray_server) as c:
        mid = _model(c, "Ridge", TRAIN_SCRIPT, _diabetes_csv())
        elsewhere = c.post("/mltraining/add", json={"modelid": mid, "placement": {"clusterID": "*", "node": "n1"}})
        assert elsewhere.status_code == 422 and elsewhere.json()["details"]["field"] == "placement.node"
        started = c.post("/mltraining/add", json={"modelid": mid, "placement": {"clusterID": "ray", "node": "*"}})
        assert started.status_code == 201, started.text
        assert started.json()["backend"] == "ray" and started.json()["job_id"].startswith("mlagent-")
        done = wait_training(c, started.json()["id"], timeout=240)
        logs = c.get(f"/mltraining/{done['id']}/logs").text
        assert done["status"] == "succeeded", (done, logs)
        assert 0.4 < done["metrics"]["r2"] < 1 and done["result_file"]["version"] == 1
        assert "trained with alpha 0.5" in logs
        assert "mlagent-job-result" not in logs and "Running entrypoint" not in logs  # the job's own output only
    assert _ray_status(ray_address, done["job_id"]) == "SUCCEEDED"  # it ran as a Ray job


def test_logs_stream_while_running_and_cancel_stops_the_ray_job(ray_server, ray_address):
    script = b"import time\nfor i in range(600):\n    print('tick', i, flush=True)\n    time.sleep(0.5)\n"
    with api_client(ray_server) as c:
        mid = _model(c, "ticker", script)
        tid = c.post("/mltraining/add", json={"modelid": mid}).json()["id"]
        _wait_log(c, tid, "tick 1")
        assert c.get(f"/mltraining/{tid}").json()["status"] == "running"
        cancelled = c.delete(f"/mltraining/{tid}").json()
        if cancelled["status"] == "running":  # the record moves once the watcher sees Ray's status
            cancelled = wait_training(c, tid)
        assert cancelled["status"] == "cancelled", cancelled
        assert _ray_status(ray_address, cancelled["job_id"]) == "STOPPED"
        ticks = c.get(f"/mltraining/{tid}/logs").text.count("tick")
        time.sleep(2)
        assert c.get(f"/mltraining/{tid}/logs").text.count("tick") == ticks  # nothing runs on


def test_failing_jobs_say_why(ray_server):
    with api_client(ray_server) as c:
        mid = _model(c, "fails", b"raise SystemExit('no luck: bad data')\n")
        failed = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"], timeout=240)
        assert failed["status"] == "failed" and "no luck: bad data" in failed["reason"], failed
        assert "exited with code 1" in failed["reason"]
        upload(c, mid, "train.py", b"print('nothing written')\n", "code")
        empty = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"], timeout=240)
        assert empty["status"] == "failed" and "no model file" in empty["reason"], empty


PROBE = b"""
import json, os, socket
print('UID', os.getuid())
print('RAYENV', sorted(k for k in os.environ if k.startswith(('MLAGENT_RAY', 'RAY_', 'AGENT_API'))))
try:
    socket.create_connection(('127.0.0.1', json.loads(os.environ['MLAGENT_HYPERPARAMETERS'])['port']), timeout=3)
    print('NET open')
except OSError as exc:
    print('NET blocked', type(exc).__name__)
try:
    os.listdir(%r)
    print('DATA readable')
except OSError as exc:
    print('DATA blocked', type(exc).__name__)
raise SystemExit(0)
"""


@pytest.mark.skipif(not bwrap_works(shutil.which("bwrap")), reason="bwrap does not work here")
def test_user_code_on_the_worker_is_confined(ray_server):
    script = PROBE % str(ray_server.data_dir)
    with api_client(ray_server) as c:
        mid = c.post("/model/add", json={"modelname": "probe", "modelkind": "regression", "hyperparameter": [
            {"parameter": "port", "value": ray_server.port}]}).json()["id"]
        upload(c, mid, "train.py", script, "code")
        upload(c, mid, "d.csv", b"a,b\n1,2\n", "data")
        run = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"], timeout=240)
        logs = c.get(f"/mltraining/{run['id']}/logs").text
    assert "NET blocked" in logs and "DATA blocked" in logs, logs  # the server's port and data dir
    assert "RAYENV []" in logs, logs  # neither Ray's nor the entrypoint's variables reach the code
    if os.getuid() == 0:
        assert "UID 65534" in logs, logs  # nobody, not the Ray user (root)
    assert run["status"] == "failed" and "no model file" in run["reason"]


@pytest.mark.slow  # tens of seconds: two server starts / a real fine-tune
def test_a_restarted_server_reattaches_to_the_running_ray_job(ray_address, make_server):
    script = TRAIN_SCRIPT.replace(b"import json, os, pickle", b"import json, os, pickle, time\n"
                                  b"print('started', flush=True)\ntime.sleep(8)")
    server = make_server(**_ray_env(ray_address)).start()
    with api_client(server) as c:
        mid = _model(c, "slow", script, _diabetes_csv())
        started = c.post("/mltraining/add", json={"modelid": mid}).json()
        _wait_log(c, started["id"], "started")
    server.kill()  # kill -9 while the job runs on Ray
    again = make_server(data_dir=server.data_dir, **_ray_env(ray_address)).start()
    with api_client(again) as c:
        done = wait_training(c, started["id"], timeout=240)
        assert done["status"] == "succeeded", (done, again.log()[-3000:])
        assert done["job_id"] == started["job_id"] and done["result_file"]["version"] == 1
        assert "trained with alpha 0.5" in c.get(f"/mltraining/{started['id']}/logs").text
    assert "following its job" in again.log()


def test_inputs_and_outputs_through_the_blob_store(ray_address, make_server, tmp_path):
    store = tmp_path / "shared-store"
    server = make_server(**_ray_env(ray_address, MLAGENT_BLOB_URL=f"file://{store}",
                                    MLAGENT_RAY_TRANSFER="blobs")).start()
    with api_client(server) as c:
        mid = _model(c, "Ridge", TRAIN_SCRIPT, _diabetes_csv())
        done = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"], timeout=240)
        assert done["status"] == "succeeded", (done, c.get(f"/mltraining/{done['id']}/logs").text)
        assert done["result_file"]["version"] == 1 and 0.4 < done["metrics"]["r2"] < 1
    from ray.job_submission import JobSubmissionClient

    sent = JobSubmissionClient(ray_address).get_job_info(done["job_id"]).runtime_env["env_vars"]["MLAGENT_RAY_JOB"]
    assert f'"blob_prefix":"jobs/ray/{done["job_id"]}"' in sent  # the worker fetched from the store
    assert not [p for p in (store / "jobs" / "ray").rglob("*") if p.is_file()]  # and the job's blobs are gone


@pytest.mark.slow  # tens of seconds: two server starts / a real fine-tune
def test_local_fine_tuning_runs_on_ray(ray_address, fake_llm, fake_hub, tmp_path):
    from ray.job_submission import JobSubmissionClient

    from .api_servers import client, start_api_server, wait_job
    from .test_api_finetune import TRAIN

    server = start_api_server(tmp_path, fake_llm, fake_hub, start_timeout=90, **_ray_env(ray_address))
    try:
        with client(server) as c:
            train = c.post("/ml-api/files/", files={"file": ("train.jsonl", TRAIN.encode())}).json()["id"]
            job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": train,
                                                            "compute_config": {"epochs": 2}}).json()
            done = wait_job(c, job["id"], timeout=300)
        assert done["status"] == "succeeded", (done, server.log()[-3000:])
        assert done["fine_tuned_model"].startswith("ft:tiny-gpt2:custom:") and done["metrics"]["epoch"] == 2
        assert (server.data_dir / "finetune" / job["id"] / "model" / "config.json").exists()
    finally:
        server.stop()
    ran = [j for j in JobSubmissionClient(ray_address).list_jobs() if (j.metadata or {}).get("mlagent_job") == job["id"]]
    assert [str(j.status.value) for j in ran] == ["SUCCEEDED"]  # the trainer ran as a Ray job



@pytest.mark.slow  # tens of seconds: two server starts / a real fine-tune
def test_a_fine_tuning_job_on_ray_survives_a_kill_of_its_server(ray_address, fake_llm, fake_hub, tmp_path):
    """kill -9 while the trainer runs on Ray: the restarted server follows the Ray job on and
    the job ends as it would have (its model stored, its record succeeded), not failed."""
    from .api_servers import client, start_api_server, wait_job
    from .test_api_finetune import TRAIN

    server = start_api_server(tmp_path, fake_llm, fake_hub, start_timeout=90, **_ray_env(ray_address))
    with client(server) as c:
        train = c.post("/ml-api/files/", files={"file": ("train.jsonl", TRAIN.encode())}).json()["id"]
        job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": train,
                                                        "compute_config": {"epochs": 6}}).json()
        remote = server.data_dir / "finetune" / job["id"] / "remote-job"
        deadline = time.monotonic() + 180
        while not remote.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert remote.exists(), server.log()[-3000:]
        assert c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json()["status"] == "running"
    server.kill()  # kill -9 while the trainer runs on Ray
    again = start_api_server(tmp_path, fake_llm, fake_hub, start_timeout=90, **_ray_env(ray_address))
    try:
        with client(again) as c:
            done = wait_job(c, job["id"], timeout=300)
            assert done["status"] == "succeeded", (done, again.log()[-3000:])
            assert done["metrics"]["epoch"] == 6
            assert c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/model/").status_code == 200
    finally:
        again.stop()
    assert "following its job" in again.log()


def test_an_unreachable_cluster_is_a_clear_error(make_server):
    server = make_server(**_ray_env(f"http://127.0.0.1:{free_port()}")).start()
    with api_client(server) as c:
        mid = _model(c, "nowhere", TRAIN_SCRIPT)
        r = c.post("/mltraining/add", json={"modelid": mid})
        assert r.status_code == 503 and r.json()["details"]["code"] == "job_backend_unavailable", r.text
        assert "cannot be reached" in r.json()["error"]
        [record] = c.get("/mltraining/all").json()
        assert record["status"] == "failed" and "cannot be reached" in record["reason"]


@pytest.mark.parametrize("settings, message", [
    ({}, "needs MLAGENT_RAY_ADDRESS"),
    ({"ray_address": "http://h:8265", "ray_runtime_env": "{nope"}, "MLAGENT_RAY_RUNTIME_ENV is not valid JSON"),
    ({"ray_address": "http://h:8265", "ray_runtime_env": "[1]"}, "must be a JSON object"),
    ({"ray_address": "http://h:8265", "ray_transfer": "blobs"}, "needs MLAGENT_BLOB_URL"),
])
def test_ray_settings_are_checked_at_start(tmp_path, settings, message):
    from mlagent.config import Settings
    from mlagent.jobs import make_backend

    with pytest.raises(ValueError, match=message):
        make_backend(Settings(job_backend="ray", data_dir=tmp_path, **settings), tmp_path)
