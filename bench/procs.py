"""The instruments every side-by-side benchmark shares.

Each server under test, ours and the baseline, runs as its own process started the same
way (`Proc`); each is driven by the same load generator (`wrk`, whose C client costs the
server little); runs of the two are interleaved, and figures are reported as the median
with min–max, next to the CPU time each server process spent per request, read from
/proc/<pid>/stat (the steadier figure on a shared machine).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def python_env(**extra: str) -> dict[str, str]:
    """The environment for a Python server process: this tree's sources first."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLAGENT_", "HF_", "AGENT_API_KEY"))}
    return {**base, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", **extra}


class Proc:
    """A server process: started, waited for until `health` answers 200, stopped."""

    def __init__(self, name: str, argv: Sequence[str], port: int, health: str, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name, self.argv, self.port, self.health = name, list(argv), port, health
        self.url = f"http://127.0.0.1:{port}"
        self.env = env or python_env()
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.spawn_seconds = 0.0  # process start → first 200 on `health`
        self.spawn_cpu = 0.0  # CPU-s the process spent until then (steadier than the wall time under load)
        self.log_path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-")) / "server.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def start(self, timeout: float = 120) -> Proc:
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT)
        with httpx.Client(timeout=2) as c:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
                try:
                    if c.get(self.url + self.health).status_code == 200:
                        self.spawn_seconds = time.monotonic() - t0
                        self.spawn_cpu = self.cpu()
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def uvicorn_proc(name: str, app: str, port: int | None = None, **env: str) -> Proc:
    """A bare ASGI app (`module:attr`) in its own uvicorn process, with the settings
    `mlagent serve` uses (uvicorn's defaults: uvloop and httptools when installed)."""
    port = port or free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log"]
    return Proc(name, argv, port, "/healthz", python_env(**env))


def fake_llm_proc(port: int | None = None) -> Proc:
    """The tests' fake LLM (tests/fakes/llm.py) as its own process: bench/fake_llm.py."""
    port = port or free_port()
    return Proc("fake-llm", [sys.executable, "-m", "bench.fake_llm", str(port)], port, "/bench/chunk_times",
                python_env())


KEYS_YAML = "key-bench: bench\n"


def compile_sources() -> None:
    """Write this tree's bytecode, as installing mlagent would (pip compiles what it installs).

    The environment may set PYTHONDONTWRITEBYTECODE, and then every spawn of mlagent would
    compile its own sources while the peers' installed packages have their bytecode; the
    spawn figures compare installed servers. Reading bytecode is not affected by that variable."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")], check=True)


def mlagent_proc(llm_url: str, data_dir: Path | None = None, port: int | None = None, **env: str) -> Proc:
    """`mlagent serve` as the tests start it: API key auth, the server's LLM key, gRPC off
    unless MLAGENT_GRPC_PORT is given, limits on sessions raised for load. Its sources are
    compiled first (`compile_sources`)."""
    compile_sources()
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="bench-mlagent-"))
    (data_dir / "keys.yaml").write_text(KEYS_YAML)
    port = port or free_port()
    values = {"MLAGENT_HOST": "127.0.0.1", "MLAGENT_PORT": str(port), "MLAGENT_DATA_DIR": str(data_dir),
              "MLAGENT_GRPC_PORT": "0", "MLAGENT_LOG_LEVEL": "warning",
              "HF_ENDPOINT": llm_url.removesuffix("/v1"),  # bench/fake_llm.py serves the Hub's whoami too
              "MLAGENT_INFERENCE_BASE_URL": llm_url, "MLAGENT_INFERENCE_API_KEY": "bench-llm-key",
              "MLAGENT_LLM_MAX_RETRIES": "0", "MLAGENT_API_KEYS_FILE": str(data_dir / "keys.yaml"),
              "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "10000000", "MLAGENT_MAX_SESSIONS_GLOBAL": "10000000",
              "MLAGENT_THREAD_TOKEN_BUDGET": "1000000000000", **env}
    return Proc("mlagent", [sys.executable, "-m", "mlagent.cli", "serve"], port, "/healthz", python_env(**values))


AUTH = {"X-API-Key": "key-bench"}  # the /api and /ml-api surfaces (and gRPC)
BEARER = {"Authorization": "Bearer hf_bench0000000000000000"}  # /v1: bench/fake_llm.py's Hub token


# -- load ------------------------------------------------------------------------------
@dataclass
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_seconds: float  # server process CPU over the run (and its drain, see `wrk`)
    served: int = 0  # requests the CPU time paid for

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        served = self.served or self.requests
        return self.cpu_seconds * 1000 / served if served else float("nan")


_LUA = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.errors.connect
    + summary.errors.read + summary.errors.write, summary.errors.timeout))
end
"""


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


def wrk(server: Proc, path: str, *, connections: int, seconds: float, method: str = "GET",
        body: object | None = None, headers: dict[str, str] | None = None, threads: int = 1,
        timeout: str = "30s", drain: bool = False) -> Load:
    """Run wrk against `server` and read the server's CPU time around it.

    wrk stops with `connections` requests still in flight, which it does not count. For slow
    requests (an agent run) that bias matters: with `drain`, the CPU is read again once the
    server has gone quiet and divided by the completed requests plus those in flight."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    headers = dict(headers or {})
    data = ""
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    lines = "\n".join(f"wrk.headers[ {_lua_str(k)} ] = {_lua_str(v)}" for k, v in headers.items())
    script = Path(tempfile.mkstemp(suffix=".lua", prefix="bench-")[1])
    script.write_text(_LUA.format(method=_lua_str(method), body=_lua_str(data) if data else "nil", headers=lines))
    try:
        cpu0 = server.cpu()
        out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
                              "--timeout", timeout, "-s", str(script), server.url + path],
                             capture_output=True, text=True, check=True).stdout
        cpu = server.cpu() - cpu0
        if drain:
            cpu = _quiet_cpu(server) - cpu0
    finally:
        script.unlink()
    m = re.search(r"^BENCH (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    n, us, p50, p99, status_err, sock_err, timeouts = map(int, m.groups())
    return Load(n, us / 1e6, p50 / 1e3, p99 / 1e3, status_err + sock_err + timeouts, cpu,
                n + connections if drain else n)


def _quiet_cpu(server: Proc, limit: float = 20) -> float:
    """The server's CPU time once it has spent under 10 ms in a 0.5 s window."""
    deadline = time.monotonic() + limit
    last = server.cpu()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = server.cpu()
        if now - last < 0.01:
            return now
        last = now
    return last


# -- reporting -------------------------------------------------------------------------
@dataclass
class Figure:
    """One row: a figure measured several times for mlagent and for its baseline."""

    name: str
    unit: str
    ours: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    higher_is_better: bool = True

    def ratio(self) -> float | None:
        if not self.ours or not self.base:
            return None
        ours, base = [v for v in self.ours if not math.isnan(v)], [v for v in self.base if not math.isnan(v)]
        if not ours or not base:
            return None
        o, b = statistics.median(ours), statistics.median(base)
        if not o or not b:
            return None
        return o / b if self.higher_is_better else b / o


def fmt(values: list[float]) -> str:
    values = [v for v in values if not math.isnan(v)]  # a run that completed nothing has no per-request figure
    if not values:
        return "—"
    med = statistics.median(values)
    digits = 0 if med >= 100 else 1 if med >= 10 else 2 if med >= 0.1 else 3
    f = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return f.format(med)
    return f"{f.format(med)} ({f.format(min(values))}–{f.format(max(values))})"


def print_table(title: str, rows: list[Figure], baseline: str = "baseline") -> None:
    """A markdown table; the ratio is mlagent ÷ baseline, expressed so that > 1 means mlagent is better."""
    print(f"\n### {title}  (load average {load_average()})")
    print(f"| figure | mlagent median (min–max) | {baseline} median (min–max) | ratio (>1: mlagent better) |")
    print("|---|---|---|---|")
    for r in rows:
        ratio = r.ratio()
        print(f"| {r.name} [{r.unit}] | {fmt(r.ours)} | {fmt(r.base)} | {f'{ratio:.2f}×' if ratio else '—'} |")
    sys.stdout.flush()


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def interleave(runs: int, ours: Callable[[], None], base: Callable[[], None]) -> None:
    """Alternate the two sides, starting with a different one each run."""
    for i in range(runs):
        for side in ((ours, base) if i % 2 == 0 else (base, ours)):
            side()


def quick_flag(argv: list[str] | None = None) -> bool:
    return "--quick" in (argv if argv is not None else sys.argv[1:])
