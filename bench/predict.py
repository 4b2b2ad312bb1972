"""Predict latency and throughput: mlagent deployments vs `mlflow models serve`, side by side.

    .venv-bench/bin/python -m bench.predict        # with mlflow (pip install -e '.[bench]')
    make bench                                      # without mlflow: sklearn's predict as baseline

Two models: Ridge on diabetes and a 100-tree random forest on iris. For each, both servers
get the same one-row requests, sequentially on one keep-alive connection (latency p50/p99
and one-row throughput) and over 8 connections (throughput); mlagent also with
`explain=true`. Every figure is the median of `--runs` runs. Before timing, each server's
answers for all rows are compared with scikit-learn's `predict` for exact equality. If
mlflow cannot be imported or started, the baseline is scikit-learn's own one-row `predict`
on a DataFrame, in-process, and the output says so."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from .loadgen import Result, build_request, run

HOST = "127.0.0.1"
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def models() -> list[tuple[str, Any, pd.DataFrame, pd.Series]]:
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import Ridge

    d = load_diabetes(as_frame=True)
    i = load_iris(as_frame=True)
    ix = i.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    # Fitted on DataFrames (feature names known), which is what mlflow's DataFrame input expects.
    return [("ridge-diabetes", Ridge(alpha=1.0, random_state=0).fit(d.data, d.target), d.data, d.target),
            ("rf100-iris", RandomForestClassifier(n_estimators=100, random_state=0).fit(ix, i.target), ix, i.target)]


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._f = open(log, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._f, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_http(self, url: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._f.close()


def start_mlagent(tmp: Path) -> tuple[Proc, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAGENT_", "AGENT_API_KEY"))}
    env.update({"MLAGENT_HOST": HOST, "MLAGENT_PORT": str(port), "MLAGENT_DATA_DIR": str(tmp / "mlagent"),
                "MLAGENT_GRPC_PORT": "0", "AGENT_API_KEY": KEY, "MLAGENT_LOG_LEVEL": "warning"})
    proc = Proc([sys.executable, "-m", "mlagent.cli", "serve"], env, tmp / "mlagent.log")
    proc.wait_http(f"http://{HOST}:{port}/api/config/model")
    return proc, port


def deploy_mlagent(port: int, name: str, model: Any, X: pd.DataFrame, y: pd.Series) -> str:
    import pickle

    with httpx.Client(base_url=f"http://{HOST}:{port}", headers={"X-API-Key": KEY}, timeout=120) as c:
        mid = c.post("/model/add", json={"modelname": name, "modelkind": "bench"}).raise_for_status().json()["id"]
        csv = pd.concat([X, y.rename("target")], axis=1).to_csv(index=False).encode()
        for fname, content, kind in ((f"{name}.pkl", pickle.dumps(model), "model"), ("train.csv", csv, "data")):
            c.post(f"/model/{mid}/upload", files={"file": (fname, content), "file_kind": (None, kind)}
                   ).raise_for_status()
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": name}).raise_for_status()
        for _ in range(600):
            status = c.get(f"/deployment/get/status/{name}").json()
            if status["status"] != "pending":
                break
            time.sleep(0.2)
        if status["status"] != "running":
            raise RuntimeError(status)
        c.post(f"/deployment/{name}/predict", json={"data": X.iloc[0].tolist(), "explain": True}).raise_for_status()
    return f"/deployment/{name}/predict"


def start_mlflow(tmp: Path, name: str, model: Any, X: pd.DataFrame) -> tuple[Proc, int]:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    path = tmp / f"mlflow-{name}"
    kw: dict[str, Any] = {}
    if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
        kw["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]  # our own freshly trained model
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X, model.predict(X)), **kw)
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{tmp / 'mlruns'}",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its uvicorn
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    proc = Proc([mlflow_bin, "models", "serve", "-m", str(path), "-h", HOST, "-p", str(port), "--env-manager",
                 "local"], env, tmp / f"mlflow-{name}.log")
    proc.wait_http(f"http://{HOST}:{port}/ping")
    return proc, port


def sklearn_baseline(model: Any, X: pd.DataFrame, n: int) -> Result:
    """In-process scikit-learn: one-row `predict` on a DataFrame (no HTTP at all)."""
    lat = []
    t0 = time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        model.predict(X.iloc[[i % len(X)]])
        lat.append(time.perf_counter() - s)
    elapsed = time.perf_counter() - t0
    lat.sort()
    return Result(n, elapsed, statistics.median(lat) * 1e3, lat[int(n * 0.99)] * 1e3)


def median_result(results: list[Result]) -> Result:
    return Result(results[0].requests, statistics.median(r.seconds for r in results),
                  statistics.median(r.p50_ms for r in results), statistics.median(r.p99_ms for r in results))


def line(label: str, r: Result) -> str:
    return f"  {label:<34} {r.rps:9.0f} req/s   p50 {r.p50_ms:7.2f} ms   p99 {r.p99_ms:7.2f} ms"


async def measure(port: int, reqs: list[bytes], runs: int, connections: int) -> Result:
    return median_result([await run(HOST, port, reqs, connections) for _ in range(runs)])


async def check_equal(port: int, reqs: list[bytes], expected: list, key: str) -> None:
    bodies: list[bytes] = []
    await run(HOST, port, reqs, 1, bodies)
    got = [json.loads(b)[key][0] for b in bodies]
    if got != expected:
        bad = sum(g != e for g, e in zip(got, expected, strict=True))
        raise SystemExit(f"predictions differ from scikit-learn's on {bad} of {len(expected)} rows")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    try:
        import mlflow  # noqa: F401
        have_mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) is not None
    except ImportError:
        have_mlflow = False
    tmp = Path(tempfile.mkdtemp(prefix="mlagent-bench-"))
    procs: list[Proc] = []
    print(f"predict benchmark: {os.cpu_count()} CPUs, {args.requests} one-row requests per run, median of "
          f"{args.runs} runs; baseline: {'mlflow models serve' if have_mlflow else 'scikit-learn in-process (mlflow not installed)'}")
    try:
        ours, port = start_mlagent(tmp)
        procs.append(ours)
        for name, model, X, y in models():
            path = deploy_mlagent(port, name, model, X, y)
            rows = [X.iloc[i % len(X)].tolist() for i in range(args.requests)]
            expected = [model.predict(X.iloc[[i]])[0].item() for i in range(len(X))]
            hdr = {"X-API-Key": KEY}
            plain = [build_request(HOST, port, path, {"data": r}, hdr) for r in rows]
            explained = [build_request(HOST, port, path, {"data": r, "explain": True}, hdr) for r in rows]
            asyncio.run(check_equal(port, plain[:len(X)], expected, "prediction"))
            print(f"\n{name}: mlagent predictions equal scikit-learn's on all {len(X)} rows")
            seq = asyncio.run(measure(port, plain, args.runs, 1))
            conc = asyncio.run(measure(port, plain, args.runs, args.connections))
            exp = asyncio.run(measure(port, explained[: max(200, args.requests // 4)], args.runs, 1))
            print(line("mlagent, 1 connection", seq))
            print(line(f"mlagent, {args.connections} connections", conc))
            print(line("mlagent explain=true, 1 connection", exp))
            if have_mlflow:
                mf, mport = start_mlflow(tmp, name, model, X)
                procs.append(mf)
                cols = list(X.columns)
                mreqs = [build_request(HOST, mport, "/invocations",
                                       {"dataframe_split": {"columns": cols, "data": [r]}}, {}) for r in rows]
                asyncio.run(check_equal(mport, mreqs[:len(X)], expected, "predictions"))
                mseq = asyncio.run(measure(mport, mreqs, args.runs, 1))
                mconc = asyncio.run(measure(mport, mreqs, args.runs, args.connections))
                mf.stop()
                procs.remove(mf)
                print(line("mlflow, 1 connection", mseq))
                print(line(f"mlflow, {args.connections} connections", mconc))
                print(f"  ratio one-row throughput, 1 connection: {seq.rps / mseq.rps:.1f}x;  "
                      f"{args.connections} connections: {conc.rps / mconc.rps:.1f}x;  "
                      f"p50 latency {mseq.p50_ms / seq.p50_ms:.1f}x lower")
            else:
                base = median_result([sklearn_baseline(model, X, min(args.requests, 1000)) for _ in range(args.runs)])
                print(line("sklearn predict(DataFrame), in-process", base))
                print(f"  ratio one-row throughput vs in-process sklearn: {seq.rps / base.rps:.1f}x")
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
