"""Every predict is in the operations log: a read right after a predict includes it (the log
is written in batches off the request path, reads flush first), and a clean shutdown right
after a burst of predicts loses none of them."""

from __future__ import annotations

import json
import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from .mlconnector.client import api_client, upload, wait_deployment


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_operations_are_read_after_write_and_survive_a_clean_shutdown(make_server, database):
    if database == "postgresql" and not os.environ.get("MLAGENT_TEST_DATABASE_URL"):
        pytest.skip("MLAGENT_TEST_DATABASE_URL is not set: the PostgreSQL run is skipped")
    data = load_diabetes(as_frame=True)
    reg = Ridge(alpha=1.0).fit(data.data, data.target)
    csv = pd.concat([data.data, data.target.rename("target")], axis=1).to_csv(index=False).encode()
    server = make_server(database=database).start()
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "r", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "r.pkl", pickle.dumps(reg), "model")
        upload(c, mid, "d.csv", csv, "data")
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-ops", "ownerid": "owner-ops"})
        status = wait_deployment(c, "dep-ops")
        assert status["status"] == "running" and status["model"]["in_process"] is True, status
        for i in range(3):
            body = c.post("/deployment/dep-ops/predict", json={"data": data.data.iloc[i].tolist()}).json()
            ops = c.get("/deployment/get/opos/owner-ops").json()
            assert len(ops) == i + 1, ops  # read-your-writes: this very call is already listed
            assert json.dumps(body, separators=(",", ":")) in [o["result"] for o in ops]
        answers = [c.post("/deployment/dep-ops/predict", json={"data": data.data.iloc[i].tolist()}).json()
                   for i in range(3, 60)]
    assert all(a["prediction"] == reg.predict(data.data.iloc[[i + 3]]).tolist() for i, a in enumerate(answers))
    server.stop()  # SIGTERM right after the burst: the queued operations must be written
    again = make_server(database=database, data_dir=server.data_dir,
                        database_url=server.env.get("MLAGENT_DATABASE_URL")).start()
    with api_client(again) as c:
        assert len(c.get("/deployment/get/opos/owner-ops").json()) == 60


def test_operations_under_concurrent_load_with_backpressure_lose_none(make_server):
    """Eight clients predict at once (single rows and 50-row batches) against a queue of only 3
    records, so predicts must wait for the writer: every call is logged once, with its own
    inputs and answer; a clean shutdown right after a second burst writes the rest."""
    data = load_diabetes(as_frame=True)
    reg = Ridge(alpha=1.0).fit(data.data, data.target)
    X = data.data.to_numpy()
    server = make_server(MLAGENT_OPERATIONS_MAX_PENDING="3").start(timeout=300)
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "r", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "r.pkl", pickle.dumps(reg), "model")
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-load", "ownerid": "owner-load"})
        assert wait_deployment(c, "dep-load")["status"] == "running"

    def burst(offset: int) -> dict[str, str]:
        def client(k: int) -> dict[str, str]:
            sent = {}
            with api_client(server) as c:
                for j in range(12):
                    i = offset + k * 12 + j
                    rows = X[i % len(X)].tolist() if j % 2 else [X[(i + m) % len(X)].tolist() for m in range(50)]
                    r = c.post("/deployment/dep-load/predict", json={"data": rows})
                    assert r.status_code == 200, r.text
                    key = json.dumps(rows if j % 2 == 0 else [rows], separators=(",", ":"))
                    assert key not in sent
                    sent[key] = r.text
            return sent

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client, range(8)))
        return {k: v for part in results for k, v in part.items()}

    first = burst(0)
    with api_client(server) as c:
        ops = c.get("/deployment/get/opos/owner-load", params={"limit": 10_000}).json()
    assert len(ops) == len(first) == 96
    assert {o["data"]: o["result"] for o in ops} == first  # each call once, its own inputs and answer
    second = burst(96)
    server.stop()  # SIGTERM right after the burst: what is queued must be written
    again = make_server(data_dir=server.data_dir).start(timeout=300)
    with api_client(again) as c:
        ops = c.get("/deployment/get/opos/owner-load", params={"limit": 10_000}).json()
    assert {o["data"]: o["result"] for o in ops} == {**first, **second} and len(ops) == 192


def test_a_posted_operation_reads_back_as_posted_even_when_it_looks_like_a_compact_record(make_server):
    """The log stores predicts' rows as `f8:…`; a client's own text in that form (or in the
    escape's) must not come back decoded."""
    server = make_server().start()
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "r", "modelkind": "regression"}).json()["id"]
        reg = Ridge().fit([[0.0], [1.0]], [0.0, 1.0])
        upload(c, mid, "r.pkl", pickle.dumps(reg), "model")
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-text", "ownerid": "owner-text"})
        texts = ["f8:1:AAAAAAAA8D8=", "t:f8:1:AAAAAAAA8D8=", "t:plain", "[[1.0]]"]
        for text in texts:
            r = c.post("/deployment/add/operation", json={"ownerid": "owner-text", "deploymentid": "dep-text",
                                                          "modelid": mid, "data": text, "result": "{}"})
            assert r.status_code == 201 and r.json()["data"] == text, r.text
        assert sorted(o["data"] for o in c.get("/deployment/get/opos/owner-text").json()) == sorted(texts)
