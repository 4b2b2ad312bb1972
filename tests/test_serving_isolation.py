"""A malicious pickle loads only in the serving worker, and under bwrap that worker can neither
write outside its own directory, read the server's files, nor open a network connection.

The pickle runs its payload at load time and reports what each attempt did in the error it
raises (which becomes the deployment's `reason`); the test checks the outside world too: no
file appeared, the listener saw no connection. Without bwrap the worker falls back (logged)
and the deployment reports `isolation: none`."""

from __future__ import annotations

import json
import pickle
import socket
import threading

import numpy as np
from sklearn.linear_model import Ridge

from .harness import needs_bwrap
from .mlconnector.client import api_client, upload, wait_deployment

PAYLOAD = '''
import json, os, socket
report = {}
def attempt(name, fn):
    try:
        fn()
        report[name] = "ok"
    except Exception as exc:
        report[name] = type(exc).__name__
def write(path):
    with open(path, "w") as f:
        f.write("pwned")
def read(path):
    with open(path, "rb") as f:
        f.read(1)
def connect():
    s = socket.create_connection(("127.0.0.1", __PORT__), timeout=3)
    s.sendall(b"leak")
    s.close()
attempt("write_data_dir", lambda: write(__DATA_DIR__ + "/pwned"))
attempt("write_outside", lambda: write(__OUTSIDE__))
attempt("read_database", lambda: read(__DATA_DIR__ + "/mlagent.db"))
attempt("connect", connect)
attempt("write_home", lambda: write("own-file"))
report["uid"] = os.getuid()
raise RuntimeError("REPORT" + json.dumps(report) + "END")
'''


class Malicious:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code, {})


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


@needs_bwrap
def test_malicious_pickle_cannot_write_outside_or_connect(make_server, tmp_path):
    server = make_server(MLAGENT_SANDBOX_ISOLATION="bwrap").start()
    listener = _Listener()
    outside = tmp_path / "outside.txt"
    code = (PAYLOAD.replace("__PORT__", str(listener.port)).replace("__DATA_DIR__", repr(str(server.data_dir)))
            .replace("__OUTSIDE__", repr(str(outside))))
    try:
        with api_client(server) as c:
            mid = c.post("/model/add", json={"modelname": "evil", "modelkind": "regression"}).json()["id"]
            assert upload(c, mid, "evil.pkl", pickle.dumps(Malicious(code)), "model").status_code == 201
            assert c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-evil"}).status_code == 201
            status = wait_deployment(c, "dep-evil")
        assert status["status"] == "failed", status
        reason = status["reason"]
        assert "REPORT" in reason, reason  # the payload did run (in the worker) and reported
        report = json.loads(reason[reason.index("REPORT") + 6:reason.index("END")])
        assert report["write_data_dir"] != "ok" and report["read_database"] != "ok", report
        assert report["connect"] != "ok", report
        assert report["write_home"] == "ok", report  # its own directory is writable
        assert report["uid"] != 0, report  # a root server drops the worker to nobody
        # /tmp inside is private: whatever it wrote there is not the test's file
        assert not outside.exists()
        assert not (server.data_dir / "pwned").exists()
        assert listener.connections == 0
        assert "pwned" not in [p.name for p in server.data_dir.rglob("*") if p.parent.name != "home"]
    finally:
        listener.close()


@needs_bwrap
def test_isolated_worker_still_serves_and_explains(make_server):
    import pandas as pd
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True)
    reg = Ridge(alpha=1.0).fit(data.data.to_numpy(), data.target.to_numpy())
    csv = pd.concat([data.data, data.target.rename("target")], axis=1).to_csv(index=False).encode()
    server = make_server(MLAGENT_SANDBOX_ISOLATION="bwrap").start()
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "r", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "r.pkl", pickle.dumps(reg), "model")
        upload(c, mid, "train.csv", csv, "data")
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-iso"})
        status = wait_deployment(c, "dep-iso")
        assert status["status"] == "running", status
        assert status["model"]["isolation"] == "bwrap" and status["model"]["in_process"] is True
        row = data.data.iloc[5].tolist()
        r = c.post("/deployment/dep-iso/predict", json={"data": row, "explain": True})
        assert r.status_code == 200, r.text
        assert r.json()["prediction"] == reg.predict(np.array([row])).tolist()
        assert len(r.json()["explanation"]["feature_importance"]) == 10
