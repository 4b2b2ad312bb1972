"""Two replicas on one PostgreSQL database: a replica that starts while another runs a
`/mltraining` job leaves the job alone (it is the other's, and its heartbeat is fresh); when
the running replica dies, the survivor fails the job once its lease expires, saying why.
A replica restarted on its own data directory is the same owner and fails its dead job at
start-up (tests/test_job_orphans.py)."""

from __future__ import annotations

import time
import uuid

import pytest

from .conftest import PG_SKIP, PG_URL
from .mlconnector.client import api_client, upload

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
LEASE = "2"


def _status(c, training_id: str) -> dict:
    return c.get(f"/mltraining/{training_id}").json()


def test_start_up_leaves_another_replicas_job_and_fails_it_when_that_replica_dies(make_server):
    env = {"MLAGENT_SANDBOX_ISOLATION": "none", "MLAGENT_LEASE_SECONDS": LEASE}
    a = make_server("postgresql", **env).start(timeout=300)
    marker = f"lease{uuid.uuid4().hex[:12]}"
    with api_client(a) as ca:
        mid = ca.post("/model/add", json={"modelname": "sleeper", "modelkind": "regression"}).json()["id"]
        upload(ca, mid, "d.csv", b"a,b\n1,2\n", "data")
        upload(ca, mid, f"{marker}.py", b"import time\nprint('started', flush=True)\ntime.sleep(300)\n", "code")
        training = ca.post("/mltraining/add", json={"modelid": mid}).json()
        assert training["status"] == "running", training

    b = make_server("postgresql", database_url=a.env["MLAGENT_DATABASE_URL"], **env).start(timeout=300)
    with api_client(a) as ca, api_client(b) as cb:
        # Several lease periods after B started, A's job still runs: B's start-up and its
        # heartbeat sweeps saw A's fresh lease.
        time.sleep(4 * float(LEASE))
        assert _status(cb, training["id"])["status"] == "running", _status(cb, training["id"])
        assert _status(ca, training["id"])["status"] == "running"
        assert "started" in ca.get(f"/mltraining/{training['id']}/logs").text

    a.kill()
    with api_client(b) as cb:
        deadline = time.monotonic() + 60
        while _status(cb, training["id"])["status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        record = _status(cb, training["id"])
    assert record["status"] == "failed", record
    assert record["reason"].startswith("the replica running the job stopped (no heartbeat for 2 s)"), record


def test_a_local_fine_tuning_job_is_left_to_its_replica_until_that_replica_dies(make_server):
    env = {"MLAGENT_SANDBOX_ISOLATION": "none", "MLAGENT_LEASE_SECONDS": LEASE}
    a = make_server("postgresql", **env).start(timeout=300)
    # Enough steps (1,000 examples x 200 epochs) that the job outlives the test's ~10 s on a fast machine.
    train = "".join(f'{{"prompt": "Q: {i}? A:", "completion": " {i}"}}\n' for i in range(1000))
    with api_client(a) as ca:
        file_id = ca.post("/ml-api/files/", files={"file": ("t.jsonl", train.encode())}).json()["id"]
        job = ca.post("/ml-api/fine-tuning-jobs/", json={
            "model_id": "tiny-gpt2", "training_file": file_id,
            "compute_config": {"instance_type": "cpu", "epochs": 200, "timeout_seconds": 3000}}).json()
        deadline = time.monotonic() + 120
        while ca.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)

    b = make_server("postgresql", database_url=a.env["MLAGENT_DATABASE_URL"], **env).start(timeout=300)
    with api_client(b) as cb:
        time.sleep(4 * float(LEASE))
        assert cb.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json()["status"] == "running"
        a.kill()
        deadline = time.monotonic() + 60
        while (record := cb.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json())["status"] == "running":
            assert time.monotonic() < deadline, record
            time.sleep(0.2)
    assert record["status"] == "failed", record
    assert record["error"].startswith("The replica running the job stopped (no heartbeat for 2 s)"), record
