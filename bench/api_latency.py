"""Seed 001 says gRPC suits high-frequency calls better than REST: measure it.

Starts the real server (SQLite, fake LLM), submits one task, then reads its status N
times over REST (`GET /api/tasks/{id}`, keep-alive httpx) and over gRPC (GetTaskStatus,
one channel), and ListModels vs `GET /ml-api/models/`. Prints the median per-call time
of several runs and the REST/gRPC ratio measured in the same run.

    .venv/bin/python bench/api_latency.py [calls-per-run] [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402
import httpx  # noqa: E402

from mlagent.grpc import (
    agent_runtime_pb2 as pb,  # noqa: E402
    agent_runtime_pb2_grpc as pb_grpc,  # noqa: E402
)
from tests.api_servers import start_api_server, wait_task  # noqa: E402
from tests.fakes.hub import FakeHub  # noqa: E402
from tests.fakes.llm import FakeLLM  # noqa: E402

KEY = (("x-api-key", "key-alice"),)


def per_call(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    llm, hub = FakeLLM().start(), FakeHub().start()
    server = start_api_server(Path(tempfile.mkdtemp()), llm, hub)
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": "key-alice"}) as rest, \
                grpc.insecure_channel(server.grpc_target) as channel:
            agent, ml = pb_grpc.AgentServiceStub(channel), pb_grpc.MLServiceStub(channel)
            task_id = rest.post("/api/tasks/", json={"prompt": "bench"}).json()["task_id"]
            wait_task(rest, task_id)
            cases = {
                "task status": (lambda: rest.get(f"/api/tasks/{task_id}").raise_for_status(),
                                lambda: agent.GetTaskStatus(pb.GetTaskStatusRequest(task_id=task_id), metadata=KEY)),
                "list models": (lambda: rest.get("/ml-api/models/").raise_for_status(),
                                lambda: ml.ListModels(pb.ListModelsRequest(), metadata=KEY)),
            }
            print(f"{calls} calls per run, {runs} runs, median per-call time")
            for name, (rest_call, grpc_call) in cases.items():
                rest_call(), grpc_call()  # warm up
                r = statistics.median(per_call(rest_call, calls) for _ in range(runs))
                g = statistics.median(per_call(grpc_call, calls) for _ in range(runs))
                print(f"{name:12s} REST {r * 1e3:7.3f} ms   gRPC {g * 1e3:7.3f} ms   REST/gRPC {r / g:5.2f}x")
    finally:
        server.stop()
        llm.stop()
        hub.stop()


if __name__ == "__main__":
    main()
