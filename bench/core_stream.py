"""Agent-run and streaming figures of one server process (issue 14, "core"), before/after.

Each section starts the real server (`mlagent serve`, SQLite unless MLAGENT_BENCH_DATABASE_URL
is set) with the fake Hub and an instant fake LLM, and reports medians over runs; the server's
CPU time comes from /proc. Sections (all by default, or name some):

  run      synchronous agent runs (`POST /v1/responses`, LLM answers at once), wrk -c 8:
           req/s and server CPU-ms per run
  get      authenticated `GET /v1/responses/{id}` of a finished response, wrk -c 32
  token    token → SSE client latency, 1 stream, 100 chunks 20 ms apart: p50 / p99
  replay   replay of a finished 10,000-event response over SSE: wall ms
  idle     1,000 idle SSE tails on a held turn: server CPU-s per s
  fanout   one answer (50 tokens) fanned out to 1,000 streams: p50 / p99 latency

Run: `PYTHONPATH=src:. .venv/bin/python -m bench.core_stream [section ...]`; point PYTHONPATH
at another tree's `src` to measure that tree (the server inherits it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM, Reply
from tests.harness import ServerProcess

RUNS = 3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def wrk(url: str, connections: int, seconds: int, headers: dict[str, str], body: dict | None = None) -> float:
    """Requests per second (wrk, 1 thread); non-2xx answers abort the bench."""
    script = None
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(json.dumps(body))}\n'
                     'wrk.headers["Content-Type"] = "application/json"\n')
        script.close()
        args += ["-s", script.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


class Bench:
    def __init__(self) -> None:
        self.hub, self.llm = FakeHub().start(), FakeLLM().start()
        env = {"HF_ENDPOINT": self.hub.url, "MLAGENT_INFERENCE_BASE_URL": self.llm.url, "MLAGENT_LOG_LEVEL": "warning",
               "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "100000", "MLAGENT_MAX_SESSIONS_GLOBAL": "100000",
               "MLAGENT_KEEPALIVE_SECONDS": "15"}
        if os.environ.get("MLAGENT_BENCH_DATABASE_URL"):
            env["MLAGENT_DATABASE_URL"] = os.environ["MLAGENT_BENCH_DATABASE_URL"]
        self.server = ServerProcess(Path(tempfile.mkdtemp()), env).start()
        self.token = self.hub.user_token("bench")
        self.auth = {"Authorization": f"Bearer {self.token}"}
        self.pid = self.server.proc.pid

    def stop(self) -> None:
        self.server.stop()
        self.hub.stop()
        self.llm.stop()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers=self.auth, timeout=120)

    def measured(self, fn) -> tuple[float, float]:
        """(fn's result, server CPU seconds while it ran)."""
        c0 = cpu_seconds(self.pid)
        out = fn()
        return out, cpu_seconds(self.pid) - c0

    # -- sections ------------------------------------------------------------------
    def sec_run(self) -> str:
        self.llm.default = Reply(text="Done.", chunks=1)
        with self.client() as c:  # warm-up
            for _ in range(5):
                assert c.post("/v1/responses", json={"input": "hi"}).json()["status"] == "completed"
        rates, cpu = [], []
        for _ in range(RUNS):
            n0 = len(self.llm.requests)
            rps, used = self.measured(lambda: wrk(self.server.url + "/v1/responses", 8, 5, self.auth, {"input": "hi"}))
            runs = len(self.llm.requests) - n0
            rates.append(rps)
            cpu.append(used / max(runs, 1) * 1000)
        return f"sync run -c 8: {statistics.median(rates):7.1f} req/s, {statistics.median(cpu):6.1f} CPU-ms per run " \
               f"(runs: {', '.join(f'{r:.0f}' for r in rates)} req/s)"

    def sec_get(self) -> str:
        self.llm.default = Reply(text="Done.", chunks=1)
        with self.client() as c:
            rid = c.post("/v1/responses", json={"input": "hi"}).json()["id"]
        rates, cpu = [], []
        for _ in range(RUNS):
            rps, used = self.measured(lambda: wrk(f"{self.server.url}/v1/responses/{rid}", 32, 5, self.auth))
            rates.append(rps)
            cpu.append(used / (rps * 5) * 1000)
        return f"GET /v1/responses/{{id}} -c 32: {statistics.median(rates):7.0f} req/s, " \
               f"{statistics.median(cpu):.2f} CPU-ms per request"

    async def _latencies(self, chunks: int, streams: int, delay: float) -> tuple[list[float], int]:
        stamps = "".join(f"{i:06d};" for i in range(chunks))
        gate = threading.Event()  # the streams open first; then the model answers
        self.llm.push(Reply(text=stamps, chunks=chunks, chunk_delay=delay, gate=gate))
        limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
        async with httpx.AsyncClient(base_url=self.server.url, headers=self.auth, timeout=300, limits=limits) as c:
            ready = asyncio.Event()
            opened = 0
            arrivals: list[list[tuple[int, float]]] = [[] for _ in range(streams)]
            rid = (await c.post("/v1/responses", json={"input": "bench", "background": True})).json()["id"]

            async def follow(k: int) -> None:
                nonlocal opened
                async with c.stream("GET", f"/v1/responses/{rid}/events") as r:
                    opened += 1
                    if opened == streams:
                        ready.set()
                    async for line in r.aiter_lines():
                        if line.startswith("data: ") and '"response.output_text.delta"' in line:
                            arrivals[k].append((int(line.split('"delta":"', 1)[1][:6]), time.time()))
                        elif line.startswith("event: response.completed"):
                            return

            tasks = [asyncio.create_task(follow(k)) for k in range(streams)]
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(0.5)
            gate.set()
            await asyncio.gather(*tasks)
        sent = dict(enumerate(self.llm.chunk_times[-chunks:]))
        lat = [(t - sent[i]) * 1000 for a in arrivals for i, t in a if i in sent]
        return lat, sum(1 for a in arrivals if len(a) == chunks)

    def sec_token(self) -> str:
        p50, p99 = [], []
        for _ in range(RUNS):
            lat, _ = asyncio.run(self._latencies(100, 1, 0.02))
            p50.append(pct(lat, .5))
            p99.append(pct(lat, .99))
        return f"token → client, 1 stream: p50 {statistics.median(p50):.1f} ms, p99 {statistics.median(p99):.1f} ms"

    def sec_fanout(self) -> str:
        lat, delivered = asyncio.run(self._latencies(50, 1000, 0.02))
        return f"fan-out to 1,000 streams: {delivered}/1000 got every token; p50 {pct(lat, .5):.0f} ms, " \
               f"p99 {pct(lat, .99):.0f} ms"

    def sec_replay(self) -> str:
        self.llm.push(Reply(text="x" * 9990, chunks=9990))
        with self.client() as c:
            r = c.post("/v1/responses", json={"input": "long"}).json()
            assert r["status"] == "completed", r
            rid = r["id"]
            times = []
            for _ in range(RUNS + 1):
                t = time.perf_counter()
                with c.stream("GET", f"/v1/responses/{rid}/events") as s:
                    n = sum(1 for line in s.iter_lines() if line.startswith("data: "))
                times.append((time.perf_counter() - t) * 1000)
        return f"replay of {n:,} events over SSE: {statistics.median(times[1:]):.0f} ms (median of {RUNS})"

    def sec_idle(self) -> str:
        gate = threading.Event()
        self.llm.push(Reply(text="held", gate=gate))

        async def tails() -> float:
            limits = httpx.Limits(max_connections=1100, max_keepalive_connections=1100)
            async with httpx.AsyncClient(base_url=self.server.url, headers=self.auth, timeout=300, limits=limits) as c:
                rid = (await c.post("/v1/responses", json={"input": "idle", "background": True})).json()["id"]
                opened = asyncio.Event()
                count = 0

                async def tail() -> None:
                    nonlocal count
                    async with c.stream("GET", f"/v1/responses/{rid}/events") as r:
                        count += 1
                        if count == 1000:
                            opened.set()
                        async for _ in r.aiter_bytes():
                            pass

                tasks = [asyncio.create_task(tail()) for _ in range(1000)]
                await asyncio.wait_for(opened.wait(), 120)
                await asyncio.sleep(2)
                c0, t0 = cpu_seconds(self.pid), time.monotonic()
                await asyncio.sleep(10)
                rate = (cpu_seconds(self.pid) - c0) / (time.monotonic() - t0)
                gate.set()
                await asyncio.wait(tasks, timeout=60)
                for t in tasks:
                    t.cancel()
                return rate

        return f"1,000 idle tails: {asyncio.run(tails()):.3f} server CPU-s per s"


def main() -> None:
    sections = sys.argv[1:] or ["run", "get", "token", "replay", "idle", "fanout"]
    bench = Bench()
    try:
        import mlagent

        print(f"# core_stream — {os.cpu_count()} cores, mlagent from {Path(mlagent.__file__).parent}")
        for name in sections:
            print(getattr(bench, f"sec_{name}")(), flush=True)
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
