"""Streams: mlagent's SSE against a bare relay of the same fake LLM, each its own process.

Figures (mlagent on SQLite, or PostgreSQL with --pg; the relay is bench/bare_apps.py):

1. token → SSE client p50/p99: one streamed run (`POST /v1/responses` `stream: true` vs the
   relay's `POST /stream`), the LLM sending 100 chunks 20 ms apart; latency from the fake
   LLM's send time of each chunk to the client's receipt.
2. a live 10,000-token answer to one client: wall time and server CPU-ms per token.
3. replay of that finished 10,000-event response (`GET /v1/responses/{id}/events`) vs bare
   Starlette serving the very frames mlagent sent, one write per frame.
4. N live runs, each with one client (N concurrent streamed runs), p50/p99 token latency.
5. fan-out of one answer to M streams (`background: true`, then M × `GET .../events`; the
   relay: M followers of one run), all connected before the LLM (held) starts.
6. M idle SSE tails (a run whose LLM is held): server CPU-seconds per second over 30 s (15 with
   --quick: whole keep-alive periods), from 3 s after they connected.

The client is bench/sse_client.py in its own process (raw asyncio sockets, no HTTP library);
its CPU time is printed too. The fake LLM stamps each chunk; every figure is the median over
interleaved runs, with server CPU from /proc/<pid>/stat.

    python -m bench.streams [--quick] [--pg] [--streams=N] [--concurrent-only | --idle-only | --only=2,3]
        [--settle=S] [--idle-seconds=S] [--keepalive=S] [--replays=N]

`--streams=N` sets the stream count of figures 4–6 (default 100 live runs, 1,000 fan-out and
idle streams); `--concurrent-only` runs only those three (issue 14's 2,000 streams per process:
`--pg --streams=2000 --concurrent-only`). `--idle-only` runs figure 6 alone on fresh servers,
measured `--settle` seconds (default 3) after the tails connect, over `--idle-seconds`;
`--only=` lists the figures to run; `--keepalive=S` sets the server's
MLAGENT_KEEPALIVE_SECONDS; `--replays=N` the replays of figure 3 (each side, interleaved).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .procs import (
    BEARER,
    Figure,
    Proc,
    fake_llm_proc,
    interleave,
    mlagent_proc,
    print_table,
    python_env,
    quick_flag,
    uvicorn_proc,
)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


class Client:
    """bench/sse_client.py as a subprocess: started, waited for READY, then collected."""

    def __init__(self, port: int, requests: list[dict], save: str | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.sse_client"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"port": port, "requests": requests, "save": save}) + "\n")
        self.proc.stdin.flush()

    def ready(self) -> None:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "READY":
            raise RuntimeError(f"client did not get its streams: {line!r} {self.proc.stderr.read()[-2000:]}")

    def result(self, timeout: float = 600) -> dict:
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"client failed: {err[-2000:]}")
        data = json.loads(out.strip().splitlines()[-1])
        bad = [s["status"] for s in data["streams"] if s["status"] != 200]
        if bad:
            raise RuntimeError(f"{len(bad)} streams answered {bad[:5]}")
        return data


class Side:
    """One server under test and how it is asked for each kind of stream."""

    def __init__(self, name: str, server: Proc, llm: Proc) -> None:
        self.name, self.server, self.llm = name, server, llm

    def script(self, chunks: int, delay: float = 0.0, hold: bool = False) -> None:
        httpx.post(self.llm.url + "/bench/reply", json={"stamps": chunks, "chunk_delay": delay,
                                                         "hold": hold}).raise_for_status()

    def stream_request(self) -> dict:
        if self.name == "mlagent":
            return {"method": "POST", "path": "/v1/responses", "body": {"input": "bench", "stream": True},
                    "headers": BEARER}
        return {"method": "POST", "path": "/stream", "body": {}}

    def start_background(self) -> str:
        if self.name == "mlagent":
            r = httpx.post(self.server.url + "/v1/responses", json={"input": "bench", "background": True},
                           headers=BEARER, timeout=60)
            r.raise_for_status()
            return r.json()["id"]
        return httpx.post(self.server.url + "/runs", timeout=60).json()["id"]

    def follow_request(self, run_id: str) -> dict:
        if self.name == "mlagent":
            return {"method": "GET", "path": f"/v1/responses/{run_id}/events", "headers": BEARER}
        return {"method": "GET", "path": f"/runs/{run_id}/events"}


def latencies(result: dict, chunks: int) -> tuple[list[float], int]:
    """Per token and stream: receipt − the LLM's send time (ms); and how many streams got
    every token exactly once, in order."""
    lat = [ms for s in result["streams"] for _, ms in s["stamps"]]
    complete = sum(1 for s in result["streams"] if [i for i, _ in s["stamps"]] == list(range(chunks)))
    return lat, complete


def live(side: Side, streams: int, chunks: int, delay: float) -> tuple[list[float], int, float, float]:
    """`streams` concurrent streamed runs, one client each: (latencies, complete, seconds, server CPU-s)."""
    side.script(chunks, delay)
    cpu0 = side.server.cpu()
    client = Client(side.server.port, [side.stream_request() for _ in range(streams)])
    client.ready()
    result = client.result()
    cpu = side.server.cpu() - cpu0
    lat, complete = latencies(result, chunks)
    return lat, complete, result["seconds"], cpu


def fan_out(side: Side, streams: int, chunks: int, delay: float) -> tuple[list[float], int, float, float]:
    """(latencies, complete, client CPU-s, server CPU-s from the LLM's release to the last stream's end)."""
    side.script(chunks, delay, hold=True)
    run_id = side.start_background()
    client = Client(side.server.port, [side.follow_request(run_id) for _ in range(streams)])
    client.ready()
    time.sleep(0.5)  # every follower subscribed
    cpu0 = side.server.cpu()
    httpx.post(side.llm.url + "/bench/release").raise_for_status()
    result = client.result()
    cpu = side.server.cpu() - cpu0
    lat, complete = latencies(result, chunks)
    return lat, complete, result["client_cpu"], cpu


def idle(side: Side, streams: int, seconds: float, settle: float = 3.0) -> float:
    """Server CPU-seconds per second while `streams` tails wait on a run whose LLM is held,
    measured from `settle` seconds after the last tail connected (per-second samples go to
    stderr, to tell a steady cost from earlier work still draining)."""
    side.script(1, hold=True)
    run_id = side.start_background()
    client = Client(side.server.port, [side.follow_request(run_id) for _ in range(streams)])
    client.ready()
    time.sleep(settle)
    cpu0 = last = side.server.cpu()
    samples = []
    for _ in range(int(seconds)):
        time.sleep(1)
        now = side.server.cpu()
        samples.append(round(now - last, 3))
        last = now
    time.sleep(seconds - int(seconds))
    cpu = side.server.cpu() - cpu0
    print(f"  {side.name}: {streams} idle tails, CPU-s per 1 s sample: {samples}", file=sys.stderr, flush=True)
    httpx.post(side.llm.url + "/bench/release").raise_for_status()
    client.result()
    return cpu / seconds


def section(title: str, rows: list[Figure], fn) -> None:
    """Run one section's interleaved runs and print its table at once; a failure is printed, not fatal."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - a benchmark reports what broke and goes on
        print(f"\n### {title}: FAILED: {type(e).__name__}: {str(e)[:1500]}")
    print_table(title, rows, "bare relay / Starlette")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    quick = quick_flag(argv)
    runs = 1 if quick else 3
    tokens = 300 if quick else 10_000
    n_live, n_fan, n_idle = (10, 50, 50) if quick else (100, 1000, 1000)
    for arg in argv:
        if arg.startswith("--streams="):
            n_live = n_fan = n_idle = int(arg.split("=", 1)[1])
    only = {1, 2, 3, 4, 5, 6}
    if "--concurrent-only" in argv:
        only = {4, 5, 6}
    if "--idle-only" in argv:
        only = {6}
    for arg in argv:
        if arg.startswith("--only="):  # figure numbers, e.g. --only=2,3
            only = {int(n) for n in arg.split("=", 1)[1].split(",")}
    latency_chunks = 20 if quick else 100
    # Whole keep-alive periods (the server's default is 15 s), measured from 3 s after the
    # tails connected: each tail's first read of the log runs after its headers went out,
    # so the first seconds are the tails' start-up, not their idle cost.
    idle_seconds = 15 if quick else 30
    settle = 3.0
    for arg in argv:
        if arg.startswith("--settle="):
            settle = float(arg.split("=", 1)[1])
        elif arg.startswith("--idle-seconds="):
            idle_seconds = float(arg.split("=", 1)[1])
    n_replays = 0  # figure 3's interleaved replays of each side (0: 3, or 1 with --quick, + 2)
    for arg in argv:
        if arg.startswith("--replays="):
            n_replays = int(arg.split("=", 1)[1])
    extra = {}
    for arg in argv:
        if arg.startswith("--keepalive="):  # the server's MLAGENT_KEEPALIVE_SECONDS (default 15)
            extra["MLAGENT_KEEPALIVE_SECONDS"] = arg.split("=", 1)[1]
    if "--pg" in argv:
        from tests.harness import create_pg_database

        extra["MLAGENT_DATABASE_URL"] = create_pg_database(os.environ["MLAGENT_TEST_DATABASE_URL"])
    rows: list[Figure] = []
    with fake_llm_proc() as llm, mlagent_proc(llm.url + "/v1", **extra) as ours, \
            uvicorn_proc("bare-relay", "bench.bare_apps:relay_app", BENCH_LLM_URL=llm.url + "/v1") as relay:
        sides = {"ours": Side("mlagent", ours, llm), "base": Side("relay", relay, llm)}

        if only & {1, 2, 3}:  # figures 1–3: one stream at a time
            live(sides["ours"], 1, 3, 0), live(sides["base"], 1, 3, 0)  # warm-up
        if 1 in only:
            # 1. token → client latency, one stream
            p50 = Figure(f"token → SSE client p50, 1 stream, {latency_chunks} chunks 20 ms apart", "ms", higher_is_better=False)
            p99 = Figure("token → SSE client p99, same", "ms", higher_is_better=False)

            def token_latency(key: str) -> None:
                lat, complete, _, _ = live(sides[key], 1, latency_chunks, 0.02)
                assert complete == 1, f"{sides[key].name}: a token was lost"
                getattr(p50, key).append(pct(lat, 0.5)), getattr(p99, key).append(pct(lat, 0.99))

            section("token → SSE client latency", [p50, p99],
                    lambda: interleave(runs, lambda: token_latency("ours"), lambda: token_latency("base")))
            rows += [p50, p99]

        if 2 in only:
            # 2. a live answer of `tokens` tokens to one client
            wall = Figure(f"a live {tokens:,}-token answer to one client", "s", higher_is_better=False)
            per_token = Figure("server CPU per token, same", "CPU-ms", higher_is_better=False)

            def long_answer(key: str) -> None:
                _, complete, seconds, cpu = live(sides[key], 1, tokens, 0)
                assert complete == 1, f"{sides[key].name}: a token was lost"
                getattr(wall, key).append(seconds), getattr(per_token, key).append(cpu * 1000 / tokens)

            section("a live answer to one client", [wall, per_token],
                    lambda: interleave(runs, lambda: long_answer("ours"), lambda: long_answer("base")))
            rows += [wall, per_token]
        elif 3 in only:
            live(sides["ours"], 1, tokens, 0)  # the response figure 3 replays

        if 3 in only:
            # 3. replay of that finished response vs bare Starlette serving the same frames
            frames_file = Path(tempfile.mkdtemp(prefix="bench-replay-")) / "frames.sse"
            rid = capture_last_response(ours, frames_file)
            replay = Figure(f"replay of a finished {tokens:,}-token response over SSE", "ms", higher_is_better=False)
            replay_cpu = Figure("server CPU per replay, same", "CPU-ms", higher_is_better=False)
            with uvicorn_proc("bare-starlette", "bench.bare_apps:replay_app", BENCH_FRAMES_FILE=str(frames_file)) as bare:
                def replay_run(server: Proc, path: str, headers: dict, key: str) -> None:
                    cpu0 = server.cpu()
                    client = Client(server.port, [{"method": "GET", "path": path, "headers": headers}])
                    client.ready()
                    result = client.result()
                    getattr(replay, key).append(result["seconds"] * 1000)
                    getattr(replay_cpu, key).append((server.cpu() - cpu0) * 1000)
                    frames = result["streams"][0]["frames"]
                    assert frames >= tokens, f"{server.name}: {frames} frames"

                def ours_replay():
                    return replay_run(ours, f"/v1/responses/{rid}/events", BEARER, "ours")
                def bare_replay():
                    return replay_run(bare, "/replay", {}, "base")
                mean_cpu = Figure("server CPU per replay, mean of all (finer than /proc's 10 ms ticks)", "CPU-ms",
                                  higher_is_better=False)

                def replays() -> None:
                    ours_replay(), bare_replay()  # warm-up
                    for f in (replay, replay_cpu):
                        f.ours.clear(), f.base.clear()
                    interleave(n_replays or (runs if quick else runs + 2), ours_replay, bare_replay)
                    mean_cpu.ours.append(statistics.mean(replay_cpu.ours))
                    mean_cpu.base.append(statistics.mean(replay_cpu.base))

                section("replay", [replay, replay_cpu, mean_cpu], replays)
            rows += [replay, replay_cpu, mean_cpu]

        client_cpu: list[float] = []
        if 4 in only:
            # 4. N live runs, one client each
            n_p50 = Figure(f"{n_live} live runs (one client each), 50 chunks 20 ms apart: token p50", "ms",
                           higher_is_better=False)
            n_p99 = Figure(f"{n_live} live runs: token p99", "ms", higher_is_better=False)
            n_ok = Figure(f"{n_live} live runs: streams that got every token", "streams")

            def n_runs(key: str) -> None:
                lat, complete, _, _ = live(sides[key], n_live, 50, 0.02)
                getattr(n_p50, key).append(pct(lat, 0.5)), getattr(n_p99, key).append(pct(lat, 0.99))
                getattr(n_ok, key).append(complete)

            section("N live runs", [n_p50, n_p99, n_ok],
                    lambda: interleave(runs, lambda: n_runs("ours"), lambda: n_runs("base")))
            rows += [n_p50, n_p99, n_ok]

        if 5 in only:
            # 5. fan-out of one answer
            f_p50 = Figure(f"one answer fanned out to {n_fan} streams, 50 chunks 20 ms apart: token p50", "ms",
                           higher_is_better=False)
            f_p99 = Figure(f"fan-out to {n_fan}: token p99", "ms", higher_is_better=False)
            f_ok = Figure(f"fan-out to {n_fan}: streams that got every token", "streams")
            f_cpu = Figure(f"fan-out to {n_fan}: server CPU from the LLM's release to the last stream's end", "CPU-s",
                           higher_is_better=False)

            def fan(key: str) -> None:
                lat, complete, ccpu, scpu = fan_out(sides[key], n_fan, 50, 0.02)
                getattr(f_p50, key).append(pct(lat, 0.5)), getattr(f_p99, key).append(pct(lat, 0.99))
                getattr(f_ok, key).append(complete), getattr(f_cpu, key).append(scpu)
                client_cpu.append(ccpu)

            section("fan-out", [f_p50, f_p99, f_ok, f_cpu],
                    lambda: interleave(runs, lambda: fan("ours"), lambda: fan("base")))
            rows += [f_p50, f_p99, f_ok, f_cpu]

        if 6 in only:
            # 6. idle tails
            idle_cpu = Figure(f"{n_idle} idle SSE tails: server CPU", "CPU-s per s", higher_is_better=False)
            section("idle tails", [idle_cpu], lambda: interleave(
                1 if quick else 2, lambda: idle_cpu.ours.append(idle(sides["ours"], n_idle, idle_seconds, settle)),
                lambda: idle_cpu.base.append(idle(sides["base"], n_idle, idle_seconds, settle))))
            rows.append(idle_cpu)
    db = "PostgreSQL" if "--pg" in argv else "SQLite"
    print_table(f"streams: mlagent ({db}) vs a bare relay of the same fake LLM ({runs} interleaved runs; "
                f"client bench/sse_client.py, {statistics.median(client_cpu or [0]):.2f} CPU-s per fan-out run)", rows,
                "bare relay / Starlette")


def capture_last_response(ours: Proc, frames_file: Path) -> str:
    """The id of the last (longest) response, and its replayed frames saved to `frames_file`."""
    listing = httpx.get(ours.url + "/v1/responses", params={"limit": 1}, headers=BEARER, timeout=60)
    listing.raise_for_status()
    rid = listing.json()["data"][0]["id"]
    client = Client(ours.port, [{"method": "GET", "path": f"/v1/responses/{rid}/events", "headers": BEARER}],
                    save=str(frames_file))
    client.ready()
    client.result()
    return rid


if __name__ == "__main__":
    main()
