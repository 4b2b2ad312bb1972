"""Client-side helpers: register a model as the seed's example does, deploy, wait for a status."""

from __future__ import annotations

import io
import pickle
import time
from typing import Any

import httpx

SEED_METADATA: dict[str, Any] = {
    "modelname": "Ridge",
    "modelkind": "Regressor",
    "hyperparameter": [{"parameter": "string", "value": 0}],
    "modelperformance": [{"metric": "Accuracy", "order": 1, "threshold": 0.89}],
    "trainingresource": [{"resource_name": "GPU", "value": 16, "deploy": "string"}],
    "runresource": [{"resource_name": "GPU", "value": 16, "deploy": "string"}],
    "featurelist": [],
    "inference": [{"type": "string", "value": "string"}],
    "modeltags": ["regression", "fast"],
    "drift_detection": [{"is_true": 1, "method": 0}],
}

TRAIN_SCRIPT = b'''
import json, os, pickle
import pandas as pd
from sklearn.linear_model import Ridge

frame = pd.read_csv(os.environ["MLAGENT_DATA_PATH"])
X, y = frame.iloc[:, :-1], frame.iloc[:, -1]
params = json.loads(os.environ.get("MLAGENT_HYPERPARAMETERS", "{}"))
alpha = float(params.get("alpha", 1.0))
reg = Ridge(alpha=alpha, random_state=0).fit(X.to_numpy(), y.to_numpy())
print("trained with alpha", alpha)
out = os.environ["MLAGENT_OUTPUT_DIR"]
with open(os.path.join(out, "diabetes_ridge.pkl"), "wb") as f:
    pickle.dump(reg, f)
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"r2": reg.score(X.to_numpy(), y.to_numpy())}, f)
'''


def pickled(obj: Any) -> bytes:
    return pickle.dumps(obj)


def upload(c: httpx.Client, model_id: str, name: str, content: bytes, kind: str) -> httpx.Response:
    return c.post(f"/model/{model_id}/upload", files={"file": (name, io.BytesIO(content)), "file_kind": (None, kind)})


def wait_deployment(c: httpx.Client, deployment_id: str, statuses=("running", "failed", "stopped"),
                    timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = c.get(f"/deployment/get/status/{deployment_id}").json()
        if body.get("status") in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def wait_training(c: httpx.Client, training_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = c.get(f"/mltraining/{training_id}").json()
        if body.get("status") in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def api_client(server, key: str = "dev-api-key", token: str | None = None) -> httpx.Client:
    """A client authenticated by X-API-Key (default: the loopback development key) or an HF token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {"X-API-Key": key}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)
