"""The runtime's figures, each side by side with a bare baseline run the same way:
bench/event_append.py (the real EventWriter → TurnStore path vs the same SQL through the bare
driver), bench/get_response.py and bench/streams.py (mlagent and the bare app each their own
server process, driven by the same client). See bench/README.md.

`python -m bench.runtime_bench [--quick]` runs those three; `... cross-replica` (PostgreSQL)
measures token → client latency when the client tails the turn on another replica (two
server processes, one database), woken by LISTEN/NOTIFY vs by the 1 s poll.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM, Reply
from tests.harness import ServerProcess, create_pg_database, drop_pg_database

from . import event_append, get_response, streams

RUNS = 5


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _stream_latencies(server: ServerProcess, token: str, llm: FakeLLM, chunks: int, streams: int,
                            tail: ServerProcess | None = None) -> tuple[list[float], int]:
    """The turn runs on `server`; the clients stream from `tail` (default: the same process)."""
    stamps = "".join(f"{i:06d};" for i in range(chunks))
    llm.push(Reply(text=stamps, chunks=chunks, chunk_delay=0.02, gate=None))
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=120, limits=limits) as c:
        rid = (await c.post("/v1/responses", json={"input": "bench", "background": True})).json()["id"]
        arrivals: list[list[tuple[int, float]]] = [[] for _ in range(streams)]

        async def follow(k: int) -> None:
            async with c.stream("GET", f"{(tail or server).url}/v1/responses/{rid}/events") as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: ") and '"response.output_text.delta"' in line:
                        idx = int(line.split('"delta":"', 1)[1][:6])
                        arrivals[k].append((idx, time.time()))
                    if line.startswith("event: response.completed"):
                        return

        await asyncio.gather(*(follow(k) for k in range(streams)))
    delivered = sum(1 for a in arrivals if len(a) == chunks)
    # Send times come from the fake LLM's record of when it wrote each chunk.
    sent = dict(enumerate(llm.chunk_times[-chunks:]))
    lat = [(t - sent[i]) * 1000 for a in arrivals for i, t in a if i in sent]
    return lat, delivered


def bench_cross_replica(make_url) -> None:
    """Two replicas on one PostgreSQL database: the turn runs on A, the client tails B."""
    print(f"\n## 5. cross-replica token → SSE client latency (postgresql, 100 chunks 20 ms apart, {RUNS} runs)")
    for label, extra in (("LISTEN/NOTIFY", {}), ("1 s poll (MLAGENT_PG_NOTIFY=false)", {"MLAGENT_PG_NOTIFY": "false"})):
        hub, llm = FakeHub().start(), FakeLLM().start()
        url, cleanup = make_url()
        env = {"HF_ENDPOINT": hub.url, "MLAGENT_INFERENCE_BASE_URL": llm.url, "MLAGENT_LOG_LEVEL": "warning",
               "MLAGENT_DATABASE_URL": url, **extra}
        a = ServerProcess(Path(tempfile.mkdtemp()), env).start()
        b = ServerProcess(Path(tempfile.mkdtemp()), env).start()
        try:
            time.sleep(1)  # let both listeners connect
            p50s, p99s = [], []
            for _ in range(RUNS):
                lat, _ = asyncio.run(_stream_latencies(a, hub.user_token("bench"), llm, 100, 1, tail=b))
                p50s.append(pct(lat, 0.5))
                p99s.append(pct(lat, 0.99))
            print(f"{label:36s} p50 {statistics.median(p50s):7.1f} ms   p99 {statistics.median(p99s):7.1f} ms")
        finally:
            a.stop()
            b.stop()
            hub.stop()
            llm.stop()
            cleanup()


def main() -> None:
    pg = os.environ.get("MLAGENT_TEST_DATABASE_URL")
    if sys.argv[1:] == ["cross-replica"]:
        if not pg:
            raise SystemExit("cross-replica needs MLAGENT_TEST_DATABASE_URL (PostgreSQL)")

        def pg_url():
            url = create_pg_database(pg)
            return url, lambda: drop_pg_database(pg, url)

        bench_cross_replica(pg_url)
        return
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    for bench in (event_append, get_response, streams):
        bench.main(quick)


if __name__ == "__main__":
    main()
