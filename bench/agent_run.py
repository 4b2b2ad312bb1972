"""A full synchronous agent run vs LangGraph's dev server, with an LLM that answers at once.

Both servers run as their own processes and make exactly one call to the same fake LLM
(bench/fake_llm.py, its own process) per run:

- mlagent: `POST /v1/responses` (synchronous, not streamed; API key; SQLite by default, or
  PostgreSQL with --pg and MLAGENT_TEST_DATABASE_URL);
- LangGraph: `langgraph dev --no-reload` (in-memory runtime) serving a one-node graph that
  calls the LLM (bench/langgraph_peer/), `POST /runs/wait` (stateless run).

Driven by wrk -c 8 in interleaved runs: requests/s and server CPU-ms per run (from
/proc/<pid>/stat, read again once the server is quiet and divided by the runs completed plus
the 8 in flight when wrk stopped; the fake LLM's CPU counts for neither). Also "spawn → first 200": process
start to the first 200 on a health route (`/healthz`, LangGraph's `/ok`), on a fresh data dir.

LangGraph's dev server pins protobuf<7, so it lives in its own venv: `make bench-peer`, or
point BENCH_LANGGRAPH at a `langgraph` executable.

    python -m bench.agent_run [--quick] [--pg] [--spawn-only [N]]

`--spawn-only N` measures only spawn → first 200 (and the CPU spent until then), N interleaved
spawns of each (default 5), and no load.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

from .procs import (
    BEARER,
    ROOT,
    Figure,
    Proc,
    fake_llm_proc,
    free_port,
    interleave,
    mlagent_proc,
    print_table,
    python_env,
    quick_flag,
    wrk,
)

PEER_DIR = ROOT / "bench" / "langgraph_peer"
JOBS = "16"  # LangGraph runs per worker, as mlagent's MLAGENT_WORKER_CONCURRENCY default


def langgraph_executable() -> str:
    for candidate in (os.environ.get("BENCH_LANGGRAPH"), str(ROOT / ".venv-langgraph" / "bin" / "langgraph"),
                      shutil.which("langgraph")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("LangGraph's dev server is not installed: `make bench-peer` (or set BENCH_LANGGRAPH)")


def langgraph_proc(llm_url: str) -> Proc:
    port = free_port()
    # A copy of the graph's folder per process: `langgraph dev` writes its state (.langgraph_api) beside it.
    work = Path(tempfile.mkdtemp(prefix="bench-langgraph-"))
    shutil.copytree(PEER_DIR, work, dirs_exist_ok=True)
    env = python_env(BENCH_LLM_URL=llm_url, LANGSMITH_TRACING="false", LOG_LEVEL="WARNING")
    env.pop("PYTHONPATH")
    argv = [langgraph_executable(), "dev", "--no-browser", "--no-reload", "--port", str(port),
            "--n-jobs-per-worker", JOBS, "--server-log-level", "warning"]
    return Proc("langgraph-dev", argv, port, "/ok", env, cwd=work)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = quick_flag(argv)
    runs, seconds, spawns = (2, 5, 1) if quick else (5, 20, 3)
    spawn_only = "--spawn-only" in argv
    if spawn_only:
        after = argv[argv.index("--spawn-only") + 1:]
        spawns = int(after[0]) if after and after[0].isdigit() else 5
    extra = {}
    if "--pg" in argv:
        from tests.harness import create_pg_database

        extra["MLAGENT_DATABASE_URL"] = create_pg_database(os.environ["MLAGENT_TEST_DATABASE_URL"])
    llm = fake_llm_proc().start()
    llm_url = llm.url + "/v1"
    spawn = Figure("spawn → first 200", "s", higher_is_better=False)
    spawn_cpu = Figure("CPU until the first 200", "CPU-s", higher_is_better=False)
    rps = Figure("synchronous agent run, -c 8", "req/s")
    cpu = Figure("server CPU per run", "CPU-ms", higher_is_better=False)
    p50 = Figure("latency p50, -c 8", "ms", higher_is_better=False)
    ours = peer = None
    try:
        for i in range(spawns):  # the last pair started serves the load runs
            for p in (ours, peer):
                if p is not None:
                    p.stop()
            first, second = ((mlagent_proc, llm_url, spawn.ours), (langgraph_proc, llm_url, spawn.base))[::1 - 2 * (i % 2)]
            started = []
            for make, url, into in (first, second):
                server = make(url, **extra) if make is mlagent_proc else make(url)
                started.append(server.start())
                into.append(server.spawn_seconds)
                (spawn_cpu.ours if server.name == "mlagent" else spawn_cpu.base).append(server.spawn_cpu)
            ours, peer = sorted(started, key=lambda s: s.name != "mlagent")
        if spawn_only:
            print_table(f"spawn → first 200: mlagent /healthz vs LangGraph dev /ok ({spawns} interleaved spawns)",
                        [spawn, spawn_cpu], "LangGraph dev")
            return
        check(ours, peer)

        def load(server: Proc, path: str, body: dict, headers: dict, side: str) -> None:
            r = wrk(server, path, connections=8, seconds=seconds, method="POST", body=body, headers=headers,
                    drain=True)
            if r.errors:
                raise RuntimeError(f"{server.name}: {r.errors} failed requests of {r.requests}\n"
                                   f"{server.log()[-2000:]}")
            getattr(rps, side).append(r.rps)
            getattr(cpu, side).append(r.cpu_ms_per_request)
            getattr(p50, side).append(r.p50_ms)

        def ours_run():
            return load(ours, "/v1/responses", {"input": "bench"}, BEARER, "ours")
        def peer_run():
            return load(peer, "/runs/wait", {"assistant_id": "agent", "input": {"input": "bench"}},
                                        {}, "base")
        ours_run(), peer_run()  # warm-up, not counted
        for f in (rps, cpu, p50):
            f.ours.clear(), f.base.clear()
        interleave(runs, ours_run, peer_run)
    finally:
        for p in (ours, peer, llm):
            if p is not None:
                p.stop()
    print_table(f"agent run: mlagent POST /v1/responses vs LangGraph dev POST /runs/wait "
                f"({runs} interleaved runs of {seconds} s, spawn ×{spawns})", [rps, cpu, p50, spawn, spawn_cpu], "LangGraph dev")


def check(ours: Proc, peer: Proc) -> None:
    """One run each, answered by the LLM: the two do the same work."""
    a = httpx.post(ours.url + "/v1/responses", json={"input": "bench"}, headers=BEARER, timeout=60)
    assert a.status_code == 200 and a.json()["status"] == "completed", a.text
    assert a.json()["output"][-1]["content"][0]["text"] == "Done.", a.text
    b = httpx.post(peer.url + "/runs/wait", json={"assistant_id": "agent", "input": {"input": "bench"}}, timeout=60)
    assert b.status_code == 200 and b.json()["answer"] == "Done.", b.text


if __name__ == "__main__":
    main()
