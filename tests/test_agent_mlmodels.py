"""The agent as an MLConnector client: in one turn it trains a classifier in its sandbox, registers
it, uploads the model and its training data, deploys it and calls predict — and the user then
finds the deployment on the response's `artifacts[]` and calls it over HTTP with the same token."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from .agent_support import deferred, release, run_turn, script, wait_for
from .harness import wait_status

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
TRAIN = f"""
import pandas as pd, skops.io
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
clf = LogisticRegression(max_iter=1000).fit(X, y)
skops.io.dump(clf, "model.skops")
frame = pd.DataFrame(X, columns={FEATURES!r})
frame["species"] = y
frame.to_csv("train.csv", index=False)
print("accuracy", clf.score(X, y))
"""
REGISTER = {"modelname": "LogisticRegression", "modelkind": "classification",
            "featurelist": [{"feature_name": n, "type": "float", "kind": 0} for n in FEATURES]
            + [{"feature_name": "species", "type": "int", "kind": 1}],
            "hyperparameter": [{"parameter": "max_iter", "value": 1000}],
            "modeltags": ["iris", "agent"], "drift_detection": [{"is_true": 1, "method": 0}]}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_train_register_upload_deploy_predict_in_one_turn(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("deployer")
    X, y = load_iris(return_X_y=True)
    expected = LogisticRegression(max_iter=1000).fit(X, y).predict(np.array(ROWS)).tolist()
    script(fake_llm, [("run_python", {"code": TRAIN})], [("model_register", REGISTER)])
    held = deferred(fake_llm)  # the model "reads" the model id from the register result
    with agent_server.client(token) as c:
        # A small cap: registry tools are free local operations and never pause the turn.
        created = c.post("/v1/responses", json={"input": "Train a classifier on iris and deploy it.",
                                                "background": True, "max_cost_usd": 0.05})
        assert created.status_code == 200, created.text
        [model] = wait_for(lambda: c.get("/model/all").json())
        model_id = model["id"]
        script(fake_llm,
               [("model_upload", {"model_id": model_id, "path": "model.skops", "kind": "model"}),
                ("model_upload", {"model_id": model_id, "path": "./train.csv", "kind": "data"})],
               [("model_deploy", {"model_id": model_id, "deployment_id": "dep-agent-iris"})],
               [("model_predict", {"deployment_id": "dep-agent-iris", "data": ROWS}),
                ("model_predict", {"deployment_id": "dep-agent-iris", "explain": True,
                                   "data": dict(zip(FEATURES, ROWS[1], strict=True))})],
               "Deployed dep-agent-iris.")
        release(held, [("model_upload", {"model_id": model_id, "path": "model.skops", "kind": "model"})])
        done = wait_status(c, created.json()["id"], {"completed", "failed", "cancelled"}, timeout=60)
        assert done["status"] == "completed", done
        outputs = {i["call_id"]: i["output"] for i in done["output"] if i["type"] == "mcp_call"}
        calls = [(i["name"], outputs[i["call_id"]]) for i in done["output"] if i["type"] == "mcp_call"]
        names = [n for n, _ in calls]
        assert names == ["run_python", "model_register", "model_upload", "model_upload", "model_upload",
                         "model_deploy", "model_predict", "model_predict"], calls
        assert "accuracy 0.97" in calls[0][1]
        assert f"Registered model {model_id}" in calls[1][1]
        assert "as model file model.skops" in calls[2][1] and "version 1" in calls[2][1]
        assert "as model file model.skops" in calls[3][1] and "version 2" in calls[3][1]  # a re-upload
        assert "as data file train.csv" in calls[4][1]
        endpoint = f"{agent_server.url}/deployment/dep-agent-iris/predict"
        assert "Deployment dep-agent-iris" in calls[5][1] and ": running" in calls[5][1], calls[5][1]
        assert endpoint in calls[5][1] and "LogisticRegression" in calls[5][1]
        assert json.loads(calls[6][1]) == {"prediction": expected}
        explained = json.loads(calls[7][1])
        assert explained["prediction"] == expected[1:2]
        e = explained["explanation"]
        assert e["method"] == "shap" and e["feature_names"] == FEATURES and len(e["feature_importance"]) == 4
        assert e["base_value"] + sum(e["feature_importance"]) == \
            pytest.approx(e["output"], rel=1e-6, abs=1e-6)

        # The response lists the live deployment (and the registered model) in artifacts[].
        arts = {a["type"]: a for a in done["artifacts"]}
        assert arts["deployment"] == {"type": "deployment", "id": "dep-agent-iris", "url": endpoint,
                                      "model_id": model_id, "status": "running",
                                      "status_url": f"{agent_server.url}/deployment/get/status/dep-agent-iris"}
        assert arts["registered_model"]["id"] == model_id
        assert arts["registered_model"]["url"] == f"{agent_server.url}/model/{model_id}"
        assert [a["type"] for a in done["artifacts"]].count("deployment") == 1
        events = c.get(f"/v1/responses/{done['id']}/events").text
        assert events.count("event: response.artifact.created") >= 3
        assert "response.approval_required" not in events
        assert done["usage"]["cost"]["other_usd"] == 0 and done["usage"]["cost"]["jobs_usd"] == 0

        # The user reaches the same model and deployment over HTTP with the same token.
        listed = c.get("/model/all").json()
        assert [m["id"] for m in listed] == [model_id]
        assert sorted(f["file_kind"] for f in listed[0]["files"]) == ["data", "model", "model"]
        status = c.get("/deployment/get/status/dep-agent-iris")
        assert status.status_code == 200 and status.json()["status"] == "running"
        assert status.json()["endpoint"] == endpoint and status.json()["modelid"] == model_id
        r = c.post(endpoint, json={"data": ROWS})
        assert r.status_code == 200 and r.json() == {"prediction": expected}
    with agent_server.client(fake_hub.user_token("stranger")) as other:
        assert other.get("/deployment/get/status/dep-agent-iris").status_code == 404
        assert other.post("/deployment/dep-agent-iris/predict", json={"data": ROWS}).status_code == 404
        assert other.get(f"/model/{model_id}").status_code == 404
        assert other.get("/model/all").json() == []


def test_bad_paths_and_refusals_are_tool_errors_and_the_turn_goes_on(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("careless")
    script(fake_llm,
           [("run_command", {"command": "ln -s /etc/passwd leak.csv && mkdir -p sub && echo x > sub/a.csv"}),
            ("model_register", {"modelname": "M", "modelkind": "classification", "drift_detection": [{"method": 7}]}),
            ("model_register", {"modelname": "M", "modelkind": "classification", "colour": "red"})],
           [("model_upload", {"model_id": "whatever", "path": "../../etc/passwd", "kind": "data"}),
            ("model_upload", {"model_id": "whatever", "path": "/etc/passwd", "kind": "data"}),
            ("model_upload", {"model_id": "whatever", "path": "leak.csv", "kind": "data"}),
            ("model_upload", {"model_id": "whatever", "path": "sub", "kind": "data"}),
            ("model_upload", {"model_id": "whatever", "path": "missing.csv", "kind": "data"}),
            ("model_upload", {"model_id": "whatever", "path": "sub/a.csv", "kind": "weights"}),
            ("model_upload", {"model_id": "not-mine", "path": "sub/a.csv", "kind": "data"}),
            ("model_upload", {"model_id": "not-mine", "path": "model.pkl", "kind": "model"}),
            ("model_deploy", {"model_id": "not-mine"}),
            ("model_predict", {"deployment_id": "dep-nope", "data": [1, 2]})],
           "I could not use those files.")
    turn = run_turn(agent_server, token, "upload some files")
    assert turn.response["status"] == "completed", turn.response
    outs = [out for _, _, out in turn.calls()]
    assert "exit code: 0" in outs[0]
    assert outs[1].startswith("Error: invalid drift_detection.0.method"), outs[1]
    assert outs[2].startswith("Error: invalid colour"), outs[2]
    assert outs[3].startswith("Error: ") and "leaves the sandbox directory" in outs[3]
    assert outs[4].startswith("Error: ") and "must be relative" in outs[4]
    assert outs[5].startswith("Error: ") and "leaves the sandbox directory" in outs[5]  # symlink out
    assert outs[6] == "Error: 'sub' is not a regular file in the sandbox"
    assert outs[7] == "Error: 'missing.csv' does not exist in the sandbox"
    assert outs[8] == "Error: 'kind' must be one of model, data, code, env"
    assert outs[9].startswith("Error: could not upload a.csv: No model with id 'not-mine'") and "HTTP 404" in outs[9]
    assert outs[10].startswith("Error: models must be uploaded as .skops files")
    assert outs[11].startswith("Error: could not deploy the model: No model with id 'not-mine'")
    assert outs[12].startswith("Error: could not predict: No deployment with id 'dep-nope'")
    assert "root:" not in "".join(outs)
    assert turn.text == "I could not use those files."
    # No sandbox file is left open in the server, also for uploads the registry refused unread.
    fds = Path(f"/proc/{agent_server.proc.pid}/fd")
    if fds.exists():
        sandboxes = str((agent_server.data_dir / "sandboxes").resolve())
        leaked = [os.readlink(fd) for fd in fds.iterdir() if os.path.exists(fd)]
        assert not [t for t in leaked if t.startswith(sandboxes)], leaked
    assert not turn.artifacts("deployment")
