"""Two mlagent replicas behind a load balancer vs one, on PostgreSQL (docs/scaling.md).

1. Turns per second: C concurrent clients each create a response (`POST /v1/responses`,
   not background: the call returns the completed turn) and send the next as soon as it
   returns, for S seconds, through a round-robin TCP load balancer in front of one replica
   or of two. The fake LLM answers at once (3 chunks), so what is measured is mlagent's
   own cost per turn. Both configurations run in every round, alternating, on the same
   database and the same two started replicas (with "one", B idles): median of R rounds,
   min–max, and the ratio two/one within each round.
2. Where the time goes: CPU seconds per turn of each process (from /proc: the replicas,
   every PostgreSQL backend, the balancer, the load client, this process with the fakes),
   and database transactions per turn (pg_stat_database).
3. Cross-replica stream latency: the turn runs on A, the client streams it from B (woken
   by LISTEN/NOTIFY), token → client p50/p99, against streaming it from A itself.

The balancer is `python -m bench.replicas lb PORT BACKEND...`: an asyncio TCP proxy that
gives each new connection to the next backend (no install; haproxy would do the same).
The load client runs in its own process (`... load URL TOKEN CLIENTS SECONDS`), so it does
not compete with the fakes for this process's GIL.

Run: `MLAGENT_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test
PYTHONPATH=src .venv/bin/python -m bench.replicas [rounds] [clients] [seconds]`
(defaults 3 rounds, 32 clients, 10 s).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM
from tests.fakes.serve import free_port
from tests.harness import ServerProcess, create_pg_database, drop_pg_database

from .runtime_bench import _stream_latencies, pct

TICKS = os.sysconf("SC_CLK_TCK")


# -- the load balancer (its own process) -------------------------------------------------
async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _balance(port: int, backends: list[tuple[str, int]]) -> None:
    turn = itertools.cycle(backends)

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, bport = next(turn)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, bport)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class Balancer:
    def __init__(self, backends: list[ServerProcess]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        targets = [s.url.removeprefix("http://") for s in backends]
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.replicas", "lb", str(self.port), *targets],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- the load client (its own process) ---------------------------------------------------
async def _load(url: str, token: str, clients: int, seconds: float) -> dict:
    # One connection per client (no pooling across clients), so the balancer spreads them.
    done: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120,
                                     limits=httpx.Limits(max_connections=1)) as c:
            while time.perf_counter() < stop_at:
                t = time.perf_counter()
                r = await c.post("/v1/responses", json={"input": "bench"})
                if r.status_code == 200 and r.json().get("status") == "completed":
                    done.append(time.perf_counter() - t)
                else:
                    errors += 1

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {"turns": len(done), "errors": errors, "elapsed": elapsed, "client_cpu": time.process_time() - cpu,
            "p50_ms": pct(done, 0.5) * 1000 if done else None, "p99_ms": pct(done, 0.99) * 1000 if done else None}


# -- CPU accounting ----------------------------------------------------------------------
def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:13]) / TICKS


def _postgres_pids() -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(entry.path, "comm").read_text().strip() in ("postgres", "postmaster"):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _pg_cpu() -> float:
    """All PostgreSQL processes' CPU (backends come and go; each is counted while it lives,
    and the pool keeps the replicas' connections open through a run)."""
    return sum(_cpu(p) for p in _postgres_pids())


def _xacts(dsn: str) -> int:
    name = dsn.rsplit("/", 1)[1]
    return int(subprocess.run(["psql", dsn.replace("postgresql+asyncpg://", "postgresql://"), "-Atc",
                               f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{name}'"],
                              capture_output=True, text=True, check=True).stdout.strip())


def run_load(lb: Balancer, token: str, clients: int, seconds: float, replicas: list[ServerProcess],
             dsn: str) -> dict:
    procs = {"replica A": replicas[0].proc.pid, "replica B": replicas[1].proc.pid, "balancer": lb.proc.pid,
             "fakes (bench process)": os.getpid()}
    before = {k: _cpu(p) for k, p in procs.items()}
    pg_before, x_before = _pg_cpu(), _xacts(dsn)
    out = subprocess.run([sys.executable, "-m", "bench.replicas", "load", lb.url, token, str(clients), str(seconds)],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    cpu = {k: _cpu(p) - before[k] for k, p in procs.items()}
    cpu["postgresql"] = _pg_cpu() - pg_before
    cpu["load client"] = result.pop("client_cpu")  # its own, without its start-up
    result["cpu"] = cpu
    result["xacts"] = _xacts(dsn) - x_before
    result["rate"] = result["turns"] / result["elapsed"]
    return result


# -- where a replica spends its CPU (py-spy) ---------------------------------------------
GROUPS = (("sqlalchemy", "SQLAlchemy"), ("asyncpg", "asyncpg (PostgreSQL driver)"), ("pydantic", "pydantic"),
          ("openai", "openai client"), ("httpx", "httpx/httpcore"), ("httpcore", "httpx/httpcore"),
          ("uvicorn", "uvicorn/starlette/FastAPI"), ("starlette", "uvicorn/starlette/FastAPI"),
          ("fastapi", "uvicorn/starlette/FastAPI"), ("json", "json"), ("asyncio", "asyncio event loop"),
          ("mlagent", "mlagent's own code"))


def _group(frame: str) -> str:
    """A py-spy frame "function (path/to/module.py:line)" → the package it belongs to."""
    where = frame.rsplit("(", 1)[-1]
    for marker, name in GROUPS:
        if f"/{marker}/" in where or f"/{marker}." in where or where.startswith(f"{marker}/"):
            return name
    return "other (stdlib, C)"


def profile(lb: Balancer, token: str, clients: int, seconds: float, pid: int) -> None:
    """Sample replica `pid` with py-spy during one run, only while a thread holds the GIL
    (`--gil`: Python work, not waiting); print where that time goes, by the package of the
    innermost frame (self time), and the top functions."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("\n(py-spy not installed: no profile)")
        return
    out = Path(tempfile.mkdtemp()) / "replica.txt"
    rec = subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds) + 2), "--rate", "200",
                            "--format", "raw", "--output", str(out), "--nonblocking", "--gil"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "bench.replicas", "load", lb.url, token, str(clients), str(seconds)],
                   capture_output=True, check=True)
    rec.wait(60)
    if not out.exists():
        print("\n(py-spy could not attach: no profile)")
        return
    groups: dict[str, int] = {}
    funcs: dict[str, int] = {}
    callers: dict[str, int] = {}  # the innermost mlagent frame of each sample: which of our code paths costs
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or not stack:
            continue
        n = int(count)
        total += n
        groups[_group(frames[-1])] = groups.get(_group(frames[-1]), 0) + n
        funcs[frames[-1]] = funcs.get(frames[-1], 0) + n
        ours = next((f for f in reversed(frames) if "mlagent/" in f), "(no mlagent frame)")
        callers[ours] = callers.get(ours, 0) + n
    print(f"\n## 4. where replica A's Python time goes (one replica; py-spy --gil, {total} samples at 200 Hz, "
          "self time by package)")
    for name, n in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{100 * n / max(1, total):5.1f}%  {name}")
    for title, table in (("top functions (self):", funcs), ("by the innermost mlagent function on the stack:", callers)):
        print(title)
        for name, n in sorted(table.items(), key=lambda kv: -kv[1])[:12]:
            print(f"{100 * n / max(1, total):5.1f}%  {name}")


# -- the benchmark -----------------------------------------------------------------------
def main(rounds: int, clients: int, seconds: float) -> None:
    pg = os.environ.get("MLAGENT_TEST_DATABASE_URL")
    if not pg:
        raise SystemExit("this benchmark needs MLAGENT_TEST_DATABASE_URL (PostgreSQL)")
    hub, llm = FakeHub().start(), FakeLLM().start()
    dsn = create_pg_database(pg)
    env = {"HF_ENDPOINT": hub.url, "MLAGENT_INFERENCE_BASE_URL": llm.url, "MLAGENT_LOG_LEVEL": "warning",
           "MLAGENT_DATABASE_URL": dsn, "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "1000000",
           "MLAGENT_MAX_SESSIONS_GLOBAL": "1000000"}
    a = ServerProcess(Path(tempfile.mkdtemp()), env)
    b = ServerProcess(Path(tempfile.mkdtemp()), env)
    token = hub.user_token("bench")
    try:
        a.start(600)  # generous: a shared machine can be very busy
        b.start(600)
        print(f"# two replicas vs one, PostgreSQL — {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
              f"at start; {clients} clients × {seconds:g} s, {rounds} rounds")
        one_lb, two_lb = Balancer([a]), Balancer([a, b])
        try:
            for lb in (one_lb, two_lb):  # warm-up: connections, first-request imports
                run_load(lb, token, clients, 2, [a, b], dsn)
            results: dict[str, list[dict]] = {"one": [], "two": []}
            for r in range(rounds):
                order = (("one", one_lb), ("two", two_lb)) if r % 2 == 0 else (("two", two_lb), ("one", one_lb))
                for name, lb in order:
                    results[name].append(run_load(lb, token, clients, seconds, [a, b], dsn))
                one, two = results["one"][-1], results["two"][-1]
                print(f"round {r + 1}: one {one['rate']:6.1f} turns/s   two {two['rate']:6.1f} turns/s   "
                      f"ratio {two['rate'] / one['rate']:.2f}   (load average {os.getloadavg()[0]:.1f})")
            _report(results)
            profile(one_lb, token, clients, seconds, a.proc.pid)
        finally:
            one_lb.stop()
            two_lb.stop()
        _latency(a, b, llm, hub.user_token("bench-stream"), rounds)
    finally:
        a.stop()
        b.stop()
        hub.stop()
        llm.stop()
        drop_pg_database(pg, dsn)


def _report(results: dict[str, list[dict]]) -> None:
    print("\n## 1. turns per second through the balancer (median [min–max])")
    for name, rs in results.items():
        rates = [r["rate"] for r in rs]
        p50 = statistics.median(r["p50_ms"] for r in rs)
        p99 = statistics.median(r["p99_ms"] for r in rs)
        errors = sum(r["errors"] for r in rs)
        print(f"{name} replica{'s' if name == 'two' else ' '}: {statistics.median(rates):6.1f} turns/s "
              f"[{min(rates):.1f}–{max(rates):.1f}]   turn p50 {p50:.0f} ms p99 {p99:.0f} ms   errors {errors}")
    ratios = [t["rate"] / o["rate"] for o, t in zip(results["one"], results["two"], strict=False)]
    print(f"two / one: {statistics.median(ratios):.2f} [{min(ratios):.2f}–{max(ratios):.2f}]")

    print("\n## 2. CPU seconds per turn by process (median over rounds), DB transactions per turn")
    for name, rs in results.items():
        keys = rs[0]["cpu"].keys()
        per = {k: statistics.median(r["cpu"][k] / max(1, r["turns"]) * 1000 for r in rs) for k in keys}
        total = sum(per.values())
        parts = "   ".join(f"{k} {v:.1f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]))
        xacts = statistics.median(r["xacts"] / max(1, r["turns"]) for r in rs)
        busy = statistics.median(sum(r["cpu"].values()) / r["elapsed"] for r in rs)
        print(f"{name}: {total:.1f} ms CPU per turn = {parts} (ms)")
        print(f"     {xacts:.1f} transactions per turn; all processes together busy {busy:.2f} of "
              f"{os.cpu_count()} cores")


def _latency(a: ServerProcess, b: ServerProcess, llm: FakeLLM, token: str, rounds: int) -> None:
    print(f"\n## 3. token → SSE client latency, turn on A (100 chunks 20 ms apart; median of {rounds} runs)")
    time.sleep(1)
    for label, tail in (("streamed from A (same replica)", None), ("streamed from B (other replica)", b)):
        p50s, p99s = [], []
        for _ in range(rounds):
            lat, _ = asyncio.run(_stream_latencies(a, token, llm, 100, 1, tail=tail))
            p50s.append(pct(lat, 0.5))
            p99s.append(pct(lat, 0.99))
        print(f"{label:32s} p50 {statistics.median(p50s):6.1f} ms [{min(p50s):.1f}–{max(p50s):.1f}]   "
              f"p99 {statistics.median(p99s):6.1f} ms [{min(p99s):.1f}–{max(p99s):.1f}]")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["lb"]:
        asyncio.run(_balance(int(args[1]), [(h, int(p)) for h, p in (t.rsplit(":", 1) for t in args[2:])]))
    elif args[:1] == ["load"]:
        print(json.dumps(asyncio.run(_load(args[1], args[2], int(args[3]), float(args[4])))))
    else:
        main(*(f(v) for f, v in zip((int, int, float), args, strict=False)))
