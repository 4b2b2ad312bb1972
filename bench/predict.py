"""Predict throughput, latency and CPU: mlagent deployments vs `mlflow models serve`, side by side.

    python -m bench.predict --runs 5 --seconds 4      # needs wrk and mlflow (pip install -e '.[bench]')
    python -m bench.predict --mlflow-python /path/to/venv/bin/python   # mlflow in a venv of its own
    make bench-mlflow && python -m bench.predict   # that venv as .venv-mlflow, found by default

Both servers run as their own processes and are driven by the same load generator (wrk, a
Lua script cycling through pre-built POST bodies; bench/wrkrun.py). Shapes: Ridge on
diabetes and a 100-tree random forest on iris, 1 and 100 rows per request, 1 and 8
connections. MLflow serves each model twice: saved with a signature (it enforces the schema
on every call) and without one; they are reported separately. mlagent's `explain=true` is
measured too (MLflow has no equivalent). So is the wire floor: a plain ASGI app in uvicorn
answering every body with a constant (bench/bare_apps.py `floor_app`), driven the same way;
its p99/p50 is what this machine's loopback and scheduler allow any server at that shape,
and the report sets mlagent's p99/p50 beside it. The servers are interleaved within every run (the
order rotates), each figure is the median of `--runs` runs with the min-max, and each
ratio the median of the per-run ratios (a run's servers share the machine's load). CPU time
per request is the server's whole process tree (from /proc), the steadier figure on a
shared machine. Before timing, every server's answers are compared with scikit-learn's
`predict` for exact equality; after, mlagent is stopped cleanly and its operations log is
counted against the requests it answered (none may be missing)."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from .wrkrun import Run, Wrk

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
KEY = "bench-key"
BODIES = 64  # distinct request bodies per shape, cycled
FLOOR = "wire floor"


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
    return [("ridge", Ridge(alpha=1.0, random_state=0).fit(d.data, d.target), d.data, d.target),
            ("rf100", RandomForestClassifier(n_estimators=100, random_state=0).fit(ix, i.target), ix, i.target)]


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._f = open(log, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._f, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, url: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._f.close()


def start_floor(tmp: Path) -> tuple[Proc, int]:
    """The wire floor (bare_apps.floor_app) in uvicorn with the settings `mlagent serve` uses."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.bare_apps:floor_app", "--app-dir", str(ROOT), "--host", HOST,
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return Proc(argv, dict(os.environ), tmp / "floor.log"), port


def start_mlagent(tmp: Path, src: Path | None = None) -> tuple[Proc, int]:
    """`mlagent serve` on a fresh data dir; with `src`, importing that source tree's mlagent."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAGENT_", "AGENT_API_KEY"))}
    env.update({"MLAGENT_HOST": HOST, "MLAGENT_PORT": str(port), "MLAGENT_DATA_DIR": str(tmp / "mlagent"),
                "MLAGENT_GRPC_PORT": "0", "AGENT_API_KEY": KEY, "MLAGENT_LOG_LEVEL": "warning"})
    run = ["-m", "mlagent.cli", "serve"] if src is None else [
        "-c", f"import sys, runpy; sys.path.insert(0, {str(src.resolve())!r}); sys.argv = ['mlagent', 'serve']; "
              "runpy.run_module('mlagent.cli', run_name='__main__')"]
    proc = Proc([sys.executable, *run], env, tmp / "mlagent.log")
    proc.wait_http(f"http://{HOST}:{port}/api/config/model")
    return proc, port


def deploy_mlagent(port: int, name: str, model: Any, X: pd.DataFrame, y: pd.Series) -> str:
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers={"X-API-Key": KEY}, timeout=180) as c:
        mid = c.post("/model/add", json={"modelname": name, "modelkind": "bench"}).raise_for_status().json()["id"]
        csv = pd.concat([X, y.rename("target")], axis=1).to_csv(index=False).encode()
        for fname, content, kind in ((f"{name}.pkl", pickle.dumps(model), "model"), ("train.csv", csv, "data")):
            c.post(f"/model/{mid}/upload", files={"file": (fname, content), "file_kind": (None, kind)}
                   ).raise_for_status()
        c.post("/deployment/add", json={"modelid": mid, "deployment_id": name}).raise_for_status()
        for _ in range(900):
            status = c.get(f"/deployment/get/status/{name}").json()
            if status["status"] != "pending":
                break
            time.sleep(0.2)
        if status["status"] != "running":
            raise RuntimeError(status)
        # The first explain waits for the worker's explainer (shap imports in the background).
        c.post(f"/deployment/{name}/predict", json={"data": X.iloc[0].tolist(), "explain": True}).raise_for_status()
    return f"/deployment/{name}/predict"


SAVE_MLFLOW = """
import inspect, pickle, sys
import mlflow.sklearn
from mlflow.models import infer_signature
model, X, path, signature = pickle.load(open(sys.argv[1], "rb"))
# Requirements given: inferring them runs the model in a subprocess that imports everything.
kw = {"pip_requirements": ["scikit-learn", "pandas"]}
if "skops_trusted_types" in inspect.signature(mlflow.sklearn.save_model).parameters:
    kw["skops_trusted_types"] = ["sklearn.tree._tree.Tree"]  # our own freshly trained model
if signature:
    kw["signature"] = infer_signature(X, model.predict(X))
mlflow.sklearn.save_model(model, path, **kw)
"""


def start_mlflow(tmp: Path, name: str, model: Any, X: pd.DataFrame, signature: bool,
                 python: Path) -> tuple[Proc, int]:
    """Save the model the MLflow way and start its server (not waiting for it: see Proc.wait_http).
    Both run in `python`'s environment: MLflow may live in a venv of its own (--mlflow-python)."""
    path = tmp / f"mlflow-{name}-{'sig' if signature else 'nosig'}"
    args = tmp / f"{path.name}.pkl"
    args.write_bytes(pickle.dumps((model, X, str(path), signature)))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{tmp / 'mlruns'}",
           "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its uvicorn
    subprocess.run([str(python), "-c", SAVE_MLFLOW, str(args)], env=env, check=True)
    port = free_port()
    proc = Proc([str(python.with_name("mlflow")), "models", "serve", "-m", str(path), "-h", HOST, "-p", str(port),
                 "--env-manager", "local"], env, tmp / f"{path.name}.log")
    return proc, port


@dataclass
class Server:
    name: str
    proc: Proc
    port: int
    header: str | None = None


@dataclass
class Cell:
    """One shape against one server: its runs."""
    model: str
    rows: int
    connections: int
    server: str
    explain: bool = False
    runs: list[Run] = field(default_factory=list)


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def batches(X: pd.DataFrame, rows: int) -> list[list[list[float]]]:
    n = len(X)
    return [[X.iloc[(k * 7 + j) % n].tolist() for j in range(rows)] for k in range(BODIES)]


def check(url: str, bodies: list[bytes], expected: list[list[Any]], key: str, headers: dict[str, str]) -> None:
    with httpx.Client(timeout=60, headers=headers) as c:
        for body, want in zip(bodies, expected, strict=False):
            got = c.post(url, content=body, headers={"Content-Type": "application/json"}).raise_for_status().json()[key]
            if got != want:
                raise SystemExit(f"{url}: predictions differ from scikit-learn's: {got[:5]} vs {want[:5]}")


def operations(data_dir: Path) -> tuple[int, int]:
    """(records, bytes of data+result) in mlagent's operations log."""
    with sqlite3.connect(data_dir / "mlagent.db") as db:
        cols = {r[1] for r in db.execute("PRAGMA table_info(ml_operations)")}
        size = " + ".join(f"coalesce(length({c}), 0)" for c in ("data", "result", "rows") if c in cols)
        count, total = db.execute(f"SELECT count(*), coalesce(sum({size}), 0) FROM ml_operations").fetchone()
    return int(count), int(total)


# `make bench-mlflow` builds it: MLflow with this venv's scikit-learn, pandas and NumPy.
MLFLOW_VENV = Path(__file__).resolve().parent.parent / ".venv-mlflow" / "bin" / "python"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="one run of 2 s per shape")
    parser.add_argument("--models", default="ridge,rf100", help="which of ridge, rf100 (comma-separated)")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    default_mlflow = Path(sys.executable)
    if not default_mlflow.with_name("mlflow").exists() and MLFLOW_VENV.with_name("mlflow").exists():
        default_mlflow = MLFLOW_VENV
    parser.add_argument("--mlflow-python", type=Path, default=default_mlflow,
                        help="the interpreter of a venv with mlflow and this venv's scikit-learn (default: this "
                             "one if it has mlflow, else .venv-mlflow's from `make bench-mlflow`)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds = 1, 2
    have_mlflow = args.mlflow_python.with_name("mlflow").exists()
    tmp = Path(tempfile.mkdtemp(prefix="mlagent-bench-"))
    wrk = Wrk()
    procs: list[Proc] = []
    print(f"predict benchmark: {os.cpu_count()} CPUs, wrk -t1 -d{args.seconds:g}s, median (min–max) of "
          f"{args.runs} interleaved runs; load average {os.getloadavg()[0]:.1f}")
    if not have_mlflow:
        print(f"no mlflow beside {args.mlflow_python}: mlagent alone (pip install -e '.[bench]', or --mlflow-python)")
    try:
        t0 = time.monotonic()
        started: dict[tuple[str, bool], tuple[Proc, int]] = {}
        fitted = [m for m in models() if m[0] in args.models.split(",")]
        for name, model, X, _ in fitted if have_mlflow else []:
            for sig in (True, False):  # they start while mlagent starts and deploys
                started[name, sig] = start_mlflow(tmp, name, model, X, sig, args.mlflow_python)
                procs.append(started[name, sig][0])
        ours, port = start_mlagent(tmp)
        procs.append(ours)
        floor, floor_port = start_floor(tmp)
        procs.append(floor)
        floor.wait_http(f"http://{HOST}:{floor_port}/")
        servers: dict[str, dict[str, Server]] = {}
        work: list[tuple[Cell, Server, Path]] = []
        answered = 0
        for name, model, X, y in fitted:
            path = deploy_mlagent(port, name, model, X, y)
            mine = Server("mlagent", ours, port, f"X-API-Key: {KEY}")
            servers[name] = {"mlagent": mine, FLOOR: Server(FLOOR, floor, floor_port)}
            if have_mlflow:
                for sig in (True, False):
                    proc, mport = started[name, sig]
                    proc.wait_http(f"http://{HOST}:{mport}/ping")
                    label = "mlflow (signature)" if sig else "mlflow (no signature)"
                    servers[name][label] = Server(label, proc, mport)
            for rows in (1, 100):
                data = batches(X, rows)
                expected = [model.predict(pd.DataFrame(b, columns=X.columns)).tolist() for b in data]
                ours_bodies = [json.dumps({"data": b[0] if rows == 1 else b}).encode() for b in data]
                theirs = [json.dumps({"dataframe_split": {"columns": list(X.columns), "data": b}}).encode()
                          for b in data]
                check(f"http://{HOST}:{port}{path}", ours_bodies, expected, "prediction", {"X-API-Key": KEY})
                answered += len(ours_bodies)
                files = {"mlagent": (path, wrk.bodies(ours_bodies))}
                files[FLOOR] = (path, files["mlagent"][1])  # mlagent's very requests
                for label, s in servers[name].items():
                    if label not in ("mlagent", FLOOR):
                        check(f"http://{HOST}:{s.port}/invocations", theirs, expected, "predictions", {})
                        files[label] = ("/invocations", wrk.bodies(theirs))
                for conns in (1, 8):
                    for label, s in servers[name].items():
                        work.append((Cell(name, rows, conns, label), s, files[label][1]))
                explained = wrk.bodies([json.dumps({"data": b[0] if rows == 1 else b, "explain": True}).encode()
                                        for b in data])
                work.append((Cell(name, rows, 1, "mlagent", explain=True), mine, explained))
            print(f"{name}: every server's predictions equal scikit-learn's on {BODIES} bodies of 1 and 100 rows "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
        paths = {(c.model, c.server): (p if c.server in ("mlagent", FLOOR) else "/invocations")
                 for c, _, _ in work for p in [f"/deployment/{c.model}/predict"]}
        for c, s, bodies in work:  # warm-up: one short pass of every cell
            r = wrk.run(f"http://{HOST}:{s.port}", paths[(c.model, c.server)], bodies, c.connections, 1, s.proc.pid,
                        s.header)
            answered += r.requests if c.server == "mlagent" else 0
        for i in range(args.runs):
            # Rotate the servers' order in each shape from run to run.
            groups: dict[tuple, list] = {}
            for item in work:
                groups.setdefault((item[0].model, item[0].rows, item[0].connections, item[0].explain), []).append(item)
            for group in groups.values():
                k = i % len(group)
                for c, s, bodies in group[k:] + group[:k]:
                    r = wrk.run(f"http://{HOST}:{s.port}", paths[(c.model, c.server)], bodies, c.connections,
                                args.seconds, s.proc.pid, s.header)
                    c.runs.append(r)
                    answered += r.requests if c.server == "mlagent" else 0
            print(f"run {i + 1}/{args.runs} done (load average {os.getloadavg()[0]:.1f})", flush=True)
        ours.stop()  # a clean shutdown: the operations log must hold every answered request
        procs.remove(ours)
        records, size = operations(tmp / "mlagent")
        report(work, args.runs)
        print(f"\noperations log: {records} records for {answered} requests wrk saw answered (in-flight ones at "
              f"the end of a run are answered but not counted by wrk); {size / max(records, 1):.0f} bytes of "
              f"data+result per record")
        if records < answered:
            raise SystemExit(f"the operations log lost {answered - records} records")
        if args.json:
            args.json.write_text(json.dumps([{**{k: v for k, v in vars(c).items() if k != "runs"},
                                              "runs": [vars(r) for r in c.runs]} for c, _, _ in work], indent=1))
    finally:
        for p in procs:
            p.stop()
        wrk.close()
        shutil.rmtree(tmp, ignore_errors=True)


def report(work: list[tuple[Cell, Server, Path]], runs: int) -> None:
    cells = {(c.model, c.rows, c.connections, c.server, c.explain): c for c, _, _ in work}
    print("\n| model | rows | conns | server | req/s | p50 ms | p99 ms | p99/p50 | CPU ms/req | mlagent ratio (req/s) | "
          "mlagent ratio (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (model, rows, conns, server, explain), c in cells.items():
        label = server + (" explain=true" if explain else "")
        ratio = cpu = ""
        mine = cells.get((model, rows, conns, "mlagent", False))
        if server not in ("mlagent", FLOOR) and mine:
            ratio = spread([m.rps / t.rps for m, t in zip(mine.runs, c.runs, strict=False)], "{:.1f}×")
            cpu = spread([t.cpu_ms / m.cpu_ms for m, t in zip(mine.runs, c.runs, strict=False)], "{:.1f}×")
        print(f"| {model} | {rows} | {conns} | {label} | {spread([r.rps for r in c.runs])} | "
              f"{spread([r.p50_ms for r in c.runs], '{:.2f}')} | {spread([r.p99_ms for r in c.runs], '{:.2f}')} | "
              f"{spread([r.p99_ms / r.p50_ms for r in c.runs], '{:.1f}×')} | "
              f"{spread([r.cpu_ms for r in c.runs], '{:.2f}')} | {ratio} | {cpu} |")
    print("\np99 / p50, mlagent beside the wire floor (the same requests to a plain ASGI app answering a constant):")
    print("| model | rows | conns | mlagent p99/p50 | wire floor p99/p50 | mlagent p99 − floor p99, ms | within 3×? |")
    print("|---|---|---|---|---|---|---|")
    for (model, rows, conns, server, explain), c in cells.items():
        floor = cells.get((model, rows, conns, FLOOR, False))
        if server != "mlagent" or explain or floor is None:
            continue
        mine_ratio = statistics.median(r.p99_ms / r.p50_ms for r in c.runs)
        floor_ratio = statistics.median(r.p99_ms / r.p50_ms for r in floor.runs)
        verdict = "yes" if mine_ratio <= 3 else "no; the floor is too" if floor_ratio > 3 else "no"
        extra = spread([m.p99_ms - f.p99_ms for m, f in zip(c.runs, floor.runs, strict=False)], "{:.2f}")
        print(f"| {model} | {rows} | {conns} | {mine_ratio:.1f}× | {floor_ratio:.1f}× | {extra} | {verdict} |")


if __name__ == "__main__":
    main()
