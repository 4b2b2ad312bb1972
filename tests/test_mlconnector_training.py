"""Training through /mltraining/add as a real job, and untrusted uploads contained by the worker."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes

from .mlconnector.client import TRAIN_SCRIPT, api_client, upload, wait_deployment, wait_training


def _diabetes_csv() -> bytes:
    data = load_diabetes(as_frame=True)
    return pd.concat([data.data, data.target.rename("target")], axis=1).to_csv(index=False).encode()


def test_training_job_produces_next_model_version(shared_server):
    with api_client(shared_server) as c:
        mid = c.post("/model/add", json={"modelname": "Ridge", "modelkind": "regression",
                                         "hyperparameter": [{"parameter": "alpha", "value": 0.5}]}).json()["id"]
        missing = c.post("/mltraining/add", json={"modelid": mid})
        assert missing.status_code == 422 and "code" in missing.json()["error"]
        assert upload(c, mid, "train.py", TRAIN_SCRIPT, "code").status_code == 201
        assert upload(c, mid, "train.csv", _diabetes_csv(), "data").status_code == 201
        far = c.post("/mltraining/add", json={"modelid": mid, "placement": {"clusterID": "eu-west", "node": "*"}})
        assert far.status_code == 422 and far.json()["details"]["field"] == "placement.clusterID"

        started = c.post("/mltraining/add", json={"modelid": mid, "placement": {"clusterID": "*", "node": "*",
                                                                                "continuum": False}})
        assert started.status_code == 201, started.text
        assert started.json()["status"] in ("running", "succeeded") and started.json()["backend"] == "local"
        done = wait_training(c, started.json()["id"])
        assert done["status"] == "succeeded", (done, c.get(f"/mltraining/{done['id']}/logs").text)
        assert 0.4 < done["metrics"]["r2"] < 1
        assert done["result_file"]["version"] == 1 and done["result_file"]["source"] == "training"
        assert "trained with alpha 0.5" in c.get(f"/mltraining/{done['id']}/logs").text
        assert done["id"] in [t["id"] for t in c.get("/mltraining/all").json()]

        # The trained model deploys and predicts like the script's own Ridge(alpha=0.5).
        assert c.post("/deployment/add", json={"modelid": mid, "deployment_id": "trained"}).status_code == 201
        assert wait_deployment(c, "trained")["status"] == "running"
        data = load_diabetes()
        from sklearn.linear_model import Ridge
        expected = Ridge(alpha=0.5, random_state=0).fit(data.data, data.target).predict(data.data[:3])
        got = c.post("/deployment/trained/predict", json={"data": data.data[:3].tolist()}).json()["prediction"]
        assert np.allclose(got, expected, rtol=1e-9)
        c.delete("/deployment/trained")


def test_failing_and_cancelled_training(shared_server):
    with api_client(shared_server) as c:
        mid = c.post("/model/add", json={"modelname": "f", "modelkind": "regression"}).json()["id"]
        assert upload(c, mid, "d.csv", b"a,b\n1,2\n", "data").status_code == 201
        assert upload(c, mid, "train.py", b"raise SystemExit('no luck: bad data')\n", "code").status_code == 201
        failed = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"])
        assert failed["status"] == "failed" and "no luck: bad data" in failed["reason"]

        assert upload(c, mid, "train.py", b"print('nothing written')\n", "code").status_code == 201
        empty = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"])
        assert empty["status"] == "failed" and "no model file" in empty["reason"]

        assert upload(c, mid, "train.py", b"import time\ntime.sleep(60)\n", "code").status_code == 201
        slow = c.post("/mltraining/add", json={"modelid": mid}).json()
        cancelled = c.delete(f"/mltraining/{slow['id']}").json()
        assert cancelled["status"] == "cancelled"


def test_training_job_limits_and_clean_environment(make_server):
    server = make_server(AGENT_API_KEY="very-secret-key", MLAGENT_JOB_CPU_SECONDS="1").start()
    script = b"import os\nprint('ENV', sorted(os.environ))\nprint('KEY' , 'very-secret-key' in repr(os.environ))\n" \
             b"while True:\n    pass\n"
    with api_client(server, key="very-secret-key") as c:
        mid = c.post("/model/add", json={"modelname": "spin", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "d.csv", b"a,b\n1,2\n", "data")
        upload(c, mid, "train.py", script, "code")
        run = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"])
        logs = c.get(f"/mltraining/{run['id']}/logs").text
    assert run["status"] == "failed" and "CPU time limit" in run["reason"], run
    assert "KEY False" in logs and "AGENT_API_KEY" not in logs


class _Exfiltrate:
    """Unpickling this runs code: it records the environment it can see, then is not a model."""

    def __reduce__(self):
        return (exec, ("import os; open('seen.txt', 'w').write(repr(dict(os.environ)))",))


class _Hog:
    def __reduce__(self):
        return (bytearray, (8 * 1024 ** 3,))


def test_untrusted_pickles_load_only_in_the_limited_worker(make_server):
    server = make_server(AGENT_API_KEY="another-secret").start()
    with api_client(server, key="another-secret") as c:
        for name, payload in (("exfil", _Exfiltrate()), ("hog", _Hog())):
            mid = c.post("/model/add", json={"modelname": name, "modelkind": "regression"}).json()["id"]
            assert upload(c, mid, f"{name}.pkl", pickle.dumps(payload), "model").status_code == 201
            assert c.post("/deployment/add", json={"modelid": mid, "deployment_id": name}).status_code == 201
            status = wait_deployment(c, name)
            assert status["status"] == "failed", status
            assert ("no predict method" if name == "exfil" else "MemoryError") in status["reason"]
            refused = c.post(f"/deployment/{name}/predict", json={"data": [1.0]})
            assert refused.status_code == 409 and refused.json()["details"]["code"] == "deployment_not_running"
        assert c.get("/model/all").status_code == 200  # the API process is unharmed
    seen = list(server.data_dir.glob("serving/*/home/seen.txt"))  # the worker's own (writable) home
    assert len(seen) == 1
    text = seen[0].read_text()
    assert "another-secret" not in text and "MLAGENT_" not in text and "HF_ENDPOINT" not in text
