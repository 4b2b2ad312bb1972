"""Runtime figures on this machine.

1. Events per second appended to the log (SQLite and, if configured, PostgreSQL), one event
   per transaction vs the writer's batching.
2. Latency from the LLM emitting a token to a subscribed SSE client receiving it (p50/p99):
   the fake LLM stamps each chunk with its send time.
3. Concurrent SSE streams one server process holds while delivering every event.
4. Create + poll round trip against a bare FastAPI endpoint served the same way.
5. PostgreSQL only: token → client latency when the client tails the turn on another
   replica (two processes, one database), woken by LISTEN/NOTIFY vs by the 1 s poll.

Run: `.venv/bin/python -m bench.runtime_bench` (MLAGENT_TEST_DATABASE_URL adds PostgreSQL);
`... -m bench.runtime_bench cross-replica` runs section 5 alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM, Reply
from tests.fakes.serve import BackgroundServer
from tests.harness import ServerProcess, create_pg_database, drop_pg_database

RUNS = 5


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- 1. append throughput -----------------------------------------------------------
async def _append_rate(url: str, batch: int, n: int) -> float:
    from mlagent.events.bus import EventBus
    from mlagent.events.response import ResponseObject
    from mlagent.events.types import OutputTextDelta
    from mlagent.runtime.ids import new_id
    from mlagent.store.db import make_engine, migrate, sessionmaker
    from mlagent.store.tables import Session, Turn
    from mlagent.store.turns import TurnStore

    await migrate(url)
    engine = make_engine(url)
    store = TurnStore(sessionmaker(engine))
    now = time.time()
    sid, rid = new_id("sess"), new_id("resp")
    snap = ResponseObject(id=rid, created_at=int(now), model="m", session_id=sid, max_cost_usd=1)
    await store.create(Session(id=sid, account="bench", agent="a", model="m", max_cost_usd=1, spent_usd=0, messages=[],
                               pending=None, closed=False, created_at=now, updated_at=now),
                       Turn(id=rid, session_id=sid, account="bench", status="in_progress", request={}, snapshot=snap.model_dump(mode="json"),
                            last_seq=-1, cancel_requested=False, created_at=now, updated_at=now), [])
    payload = OutputTextDelta(item_id="msg_x", output_index=0, content_index=0, delta="token ").model_dump_json()
    snapshot = snap.model_dump(mode="json")
    started = time.perf_counter()
    seq = 0
    for _ in range(n // batch):
        await store.append(rid, [(seq + i, "response.output_text.delta", payload) for i in range(batch)], snapshot, "in_progress")
        seq += batch
    elapsed = time.perf_counter() - started
    await engine.dispose()
    _ = EventBus  # the bus is not involved in raw append throughput
    return seq / elapsed


def bench_append(databases: dict[str, str]) -> None:
    print(f"\n## 1. events appended per second (median of {RUNS} runs)")
    for name, make_url in databases.items():
        for batch in (1, 32):
            rates = []
            for _ in range(RUNS):
                url, cleanup = make_url()
                try:
                    rates.append(asyncio.run(_append_rate(url, batch, 2000 if batch == 1 else 16000)))
                finally:
                    cleanup()
            print(f"{name:10s} batch={batch:<3d} {statistics.median(rates):10,.0f} events/s")


# -- 2/3/4 need a running server ---------------------------------------------------------
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
        sent: dict[int, float] = {}

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


def bench_server(database: str, make_url) -> None:
    hub, llm = FakeHub().start(), FakeLLM().start()
    url, cleanup = make_url()
    env = {"HF_ENDPOINT": hub.url, "MLAGENT_INFERENCE_BASE_URL": llm.url, "MLAGENT_LOG_LEVEL": "warning",
           "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "100000", "MLAGENT_MAX_SESSIONS_GLOBAL": "100000"}
    if url.startswith("postgresql"):
        env["MLAGENT_DATABASE_URL"] = url
    server = ServerProcess(Path(tempfile.mkdtemp()), env).start()
    token = hub.user_token("bench")
    try:
        print(f"\n## 2. token → SSE client latency ({database}, 1 stream, 100 chunks 20 ms apart, {RUNS} runs)")
        p50s, p99s = [], []
        for _ in range(RUNS):
            lat, _ = asyncio.run(_stream_latencies(server, token, llm, 100, 1))
            p50s.append(pct(lat, 0.5))
            p99s.append(pct(lat, 0.99))
        print(f"p50 {statistics.median(p50s):.1f} ms   p99 {statistics.median(p99s):.1f} ms  (medians over runs)")

        print(f"\n## 3. concurrent SSE streams on one server process ({database})")
        for n in (100, 300, 1000):
            lat, delivered = asyncio.run(_stream_latencies(server, token, llm, 50, n))
            print(f"{n:5d} streams: {delivered}/{n} received every event; latency p50 {pct(lat, .5):.0f} ms "
                  f"p99 {pct(lat, .99):.0f} ms")

        print(f"\n## 4. create + poll round trip vs a bare FastAPI endpoint ({database}, median of {RUNS}×50)")
        bare = _bare_server()
        # Hold every model call so the turns wait on the (in-process) fake LLM instead of
        # competing with this client for the GIL: what is measured is the API's own cost.
        hold = threading.Event()
        llm.default = Reply(text="held", gate=hold)
        try:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as c, \
                    httpx.Client(base_url=bare.url) as b:
                ours, base = [], []
                for _ in range(RUNS):
                    t = time.perf_counter()
                    for _ in range(50):
                        rid = c.post("/v1/responses", json={"input": "q", "background": True}).json()["id"]
                        c.get(f"/v1/responses/{rid}")
                    ours.append((time.perf_counter() - t) / 50 * 1000)
                    t = time.perf_counter()
                    for _ in range(50):
                        b.post("/v1/responses", json={"input": "q", "background": True}).json()
                        b.get("/v1/responses/x")
                    base.append((time.perf_counter() - t) / 50 * 1000)
            o, bb = statistics.median(ours), statistics.median(base)
            print(f"mlagent create+poll {o:.2f} ms   bare FastAPI post+get {bb:.2f} ms   ratio {o / bb:.1f}×")
        finally:
            hold.set()
            bare.stop()
    finally:
        server.stop()
        hub.stop()
        llm.stop()
        cleanup()


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


def _bare_server() -> BackgroundServer:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/v1/responses")
    async def create(body: dict):
        return {"id": "resp_x", "status": "queued", "input": body.get("input")}

    @app.get("/v1/responses/{rid}")
    async def get(rid: str):
        return {"id": rid, "status": "queued"}

    return BackgroundServer(app).start()


def main() -> None:
    pg = os.environ.get("MLAGENT_TEST_DATABASE_URL")

    def sqlite_url():
        d = tempfile.mkdtemp()
        return f"sqlite+aiosqlite:///{d}/bench.db", lambda: None

    def pg_url():
        url = create_pg_database(pg)
        return url, lambda: drop_pg_database(pg, url)

    databases = {"sqlite": sqlite_url}
    if pg:
        databases["postgresql"] = pg_url
    print(f"# mlagent runtime benchmark — {os.cpu_count()} cores")
    if sys.argv[1:] == ["cross-replica"]:
        if not pg:
            raise SystemExit("section 5 needs MLAGENT_TEST_DATABASE_URL (PostgreSQL)")
        bench_cross_replica(pg_url)
        return
    bench_append(databases)
    for name, make in databases.items():
        bench_server(name, make)
    if pg:
        bench_cross_replica(pg_url)


if __name__ == "__main__":
    main()
