"""REST vs gRPC on the same server with like clients: the same compiled load generator
(nghttp2's h2load, C) drives both, with the same concurrency, request count and payload —
`GET /api/tasks/{id}` over HTTP/1.1 (`h2load --h1`) and `AgentService/GetTaskStatus` over
HTTP/2 — and `GET /ml-api/models/` vs `MLService/ListModels`. Requests/s and the server's
CPU-ms per request (/proc/<pid>/stat), interleaved runs, median (min–max).

Here "baseline" is gRPC: the ratio says how REST compares with it (>1: REST better).
Needs h2load (`apt-get install nghttp2-client`).

    python -m bench.rest_grpc [--quick]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx

from .procs import (
    AUTH,
    Figure,
    Proc,
    fake_llm_proc,
    free_port,
    interleave,
    mlagent_proc,
    print_table,
    quick_flag,
)


def h2load(server: Proc, url: str, *, requests: int, clients: int, h1: bool, headers: dict[str, str],
           data: Path | None = None) -> tuple[float, float, int]:
    """(requests/s, server CPU-ms per request, failed requests)."""
    argv = ["h2load", "-n", str(requests), "-c", str(clients), "-m", "1", *(["--h1"] if h1 else [])]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    if data is not None:
        argv += ["-d", str(data)]
    cpu0 = server.cpu()
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    cpu = server.cpu() - cpu0
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    ok, failed, errored = map(int, done.groups())
    status = re.search(r"status codes: (\d+) 2xx", out)
    return rps, cpu * 1000 / max(1, ok), failed + errored + (ok - int(status.group(1)) if status else 0)


def grpc_body(message) -> Path:
    """A gRPC request body as on the wire: uncompressed flag, 4-byte length, the message."""
    raw = message.SerializeToString()
    path = Path(tempfile.mkstemp(suffix=".bin", prefix="bench-grpc-")[1])
    path.write_bytes(b"\x00" + len(raw).to_bytes(4, "big") + raw)
    return path


def main(argv: list[str] | None = None) -> None:
    from mlagent.grpc import agent_runtime_pb2 as pb, agent_runtime_pb2_grpc as pb_grpc

    argv = sys.argv[1:] if argv is None else argv
    if shutil.which("h2load") is None:
        raise SystemExit("h2load is not installed (apt-get install nghttp2-client)")
    runs, n = (2, 300) if quick_flag(argv) else (5, 3000)
    grpc_port = free_port()
    rows = []
    with fake_llm_proc() as llm, mlagent_proc(llm.url + "/v1", MLAGENT_GRPC_PORT=str(grpc_port)) as server:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=60) as rest:
            task_id = rest.post("/api/tasks/", json={"prompt": "bench"}).json()["task_id"]
            while rest.get(f"/api/tasks/{task_id}").json()["status"] in ("queued", "in_progress"):
                time.sleep(0.1)
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:  # the calls answer, before load
            metadata = tuple((k.lower(), v) for k, v in AUTH.items())
            pb_grpc.AgentServiceStub(channel).GetTaskStatus(pb.GetTaskStatusRequest(task_id=task_id), metadata=metadata)
            pb_grpc.MLServiceStub(channel).ListModels(pb.ListModelsRequest(), metadata=metadata)
        grpc_headers = {"content-type": "application/grpc", "te": "trailers", **{k.lower(): v for k, v in AUTH.items()}}
        cases = {
            "task status": (f"/api/tasks/{task_id}", "/AgentService/GetTaskStatus",
                            grpc_body(pb.GetTaskStatusRequest(task_id=task_id))),
            "list models": ("/ml-api/models/", "/MLService/ListModels", grpc_body(pb.ListModelsRequest())),
        }
        for name, (rest_path, method, body) in cases.items():
            rps = Figure(f"{name}, -c 8", "req/s")
            cpu = Figure(f"{name}: server CPU per call", "CPU-ms", higher_is_better=False)

            def call(key: str, name=name, rest_path=rest_path, method=method, body=body, rps=rps, cpu=cpu) -> None:
                if key == "ours":
                    r, c, bad = h2load(server, server.url + rest_path, requests=n, clients=8, h1=True, headers=AUTH)
                else:
                    r, c, bad = h2load(server, f"http://127.0.0.1:{grpc_port}{method}", requests=n, clients=8,
                                       h1=False, headers=grpc_headers, data=body)
                if bad:
                    raise RuntimeError(f"{name} ({'REST' if key == 'ours' else 'gRPC'}): {bad} failed calls")
                getattr(rps, key).append(r), getattr(cpu, key).append(c)

            call("ours"), call("base")  # warm-up
            for f in (rps, cpu):
                f.ours.clear(), f.base.clear()
            interleave(runs, lambda: call("ours"), lambda: call("base"))
            rows += [rps, cpu]
    print_table(f"REST (mlagent column) vs gRPC (baseline column), same server, h2load -c 8 for both "
                f"({runs} interleaved runs of {n} calls)", rows, "gRPC")


if __name__ == "__main__":
    main()
