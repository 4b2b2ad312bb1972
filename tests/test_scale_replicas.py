"""Two server processes on one PostgreSQL database and one S3 blob store (moto's server over
real HTTP): a model uploaded and deployed through replica A predicts through replica B
(fetched from the store, sha256-checked), and a session's sandbox follows it — a file the
agent writes in a turn on A is read by the chained turn on B."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from .conftest import PG_SKIP, PG_URL
from .fakes.llm import Reply
from .mlconnector.client import (
    TRAIN_SCRIPT,
    api_client,
    upload,
    wait_deployment,
    wait_training,
)

pytestmark = pytest.mark.skipif(not PG_URL, reason=PG_SKIP)


def two_replicas(make_server, s3_server, **env: str):
    shared = {**s3_server.server_env(s3_server.new_bucket()), "MLAGENT_SANDBOX_ISOLATION": "none", **env}
    a = make_server("postgresql", **shared).start(timeout=120)
    b = make_server("postgresql", database_url=a.env["MLAGENT_DATABASE_URL"], **shared).start(timeout=120)
    return a, b


def test_a_deployment_made_through_one_replica_predicts_through_the_other(make_server, s3_server):
    a, b = two_replicas(make_server, s3_server)
    X = np.arange(20, dtype=float).reshape(10, 2)
    reg = Ridge(alpha=0.5).fit(X, X @ [2.0, -1.0] + 3)
    with api_client(a) as ca, api_client(b) as cb:
        mid = ca.post("/model/add", json={"modelname": "r", "modelkind": "regression"}).json()["id"]
        assert upload(ca, mid, "r.pkl", pickle.dumps(reg), "model").status_code == 201
        assert ca.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-x"}).status_code == 201
        assert wait_deployment(ca, "dep-x")["status"] == "running"
        # The file is in the bucket, not only on A's disk; B never saw the upload.
        assert not list((b.data_dir / "artifacts").glob("??/*"))
        r = cb.post("/deployment/dep-x/predict", json={"data": [4.0, 5.0]})
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == pytest.approx(reg.predict(np.array([[4.0, 5.0]])).tolist())
        cached = list((b.data_dir / "artifacts").glob("??/*"))
        assert len(cached) == 1 and cached[0].read_bytes() == pickle.dumps(reg)
        files = cb.get(f"/model/{mid}").json()["files"]
        assert files and files[0]["sha256"] == cached[0].name

        # A training job started through B takes its inputs from the store; its model file
        # and its log are then read through A.
        assert upload(ca, mid, "train.py", TRAIN_SCRIPT, "code").status_code == 201
        assert upload(ca, mid, "train.csv", b"x1,x2,y\n1,2,3\n2,3,5\n3,5,8\n4,4,9\n", "data").status_code == 201
        run = wait_training(cb, cb.post("/mltraining/add", json={"modelid": mid}).json()["id"])
        assert run["status"] == "succeeded", (run, cb.get(f"/mltraining/{run['id']}/logs").text)
        assert "trained with alpha" in ca.get(f"/mltraining/{run['id']}/logs").text
        trained = [f for f in ca.get(f"/model/{mid}").json()["files"] if f["source"] == "training"]
        assert len(trained) == 1
        assert ca.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-t"}).status_code == 201
        assert wait_deployment(ca, "dep-t")["status"] == "running"


def test_a_chained_turn_on_another_replica_finds_the_workspace(make_server, s3_server, fake_hub, fake_llm):
    a, b = two_replicas(make_server, s3_server)
    token = fake_hub.user_token("rita")
    fake_llm.push(Reply(tool_calls=[("write_file", {"path": "results/notes.txt", "content": "epoch 1: 0.91"})]),
                  Reply(text="Saved."))
    with a.client(token) as ca, b.client(token) as cb:
        first = ca.post("/v1/responses", json={"input": "save notes"}).json()
        assert first["status"] == "completed", first
        session = first["session_id"]
        assert (a.data_dir / "sandboxes" / session / "results" / "notes.txt").exists()
        assert not (b.data_dir / "sandboxes" / session).exists()

        fake_llm.push(Reply(tool_calls=[("read_file", {"path": "results/notes.txt"})]),
                      Reply(tool_calls=[("write_file", {"path": "results/notes.txt", "content": "epoch 2: 0.93"})]),
                      Reply(text="Read it."))
        second = cb.post("/v1/responses", json={"input": "read the notes", "previous_response_id": first["id"]}).json()
        assert second["status"] == "completed", second
        # The agent's tool runs are `mcp_call` items, each carrying its own output.
        outputs = [i["output"] for i in second["output"] if i["type"] == "mcp_call" and i["name"] == "read_file"]
        assert len(outputs) == 1 and "epoch 1: 0.91" in outputs[0], second["output"]

        # Back on A: its copy is stale, so the turn brings it up to date first.
        fake_llm.push(Reply(tool_calls=[("read_file", {"path": "results/notes.txt"})]), Reply(text="Ok."))
        third = ca.post("/v1/responses", json={"input": "again", "previous_response_id": second["id"]}).json()
        outputs = [i["output"] for i in third["output"] if i["type"] == "mcp_call" and i["name"] == "read_file"]
        assert len(outputs) == 1 and "epoch 2: 0.93" in outputs[0], third["output"]
