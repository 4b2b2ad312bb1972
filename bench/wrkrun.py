"""wrk as the load generator: POST bodies cycled from a file by a Lua script, the figures read
from its `done()` hook, and the server's CPU time over the run (its whole process tree, from
/proc/<pid>/stat), so CPU per request covers helpers such as a serving worker or the uvicorn
child `mlflow models serve` starts.

wrk is C and event driven: one thread drives 8 connections at a small fraction of a core, so
on a 2-core machine it flattens the servers' differences far less than a Python client."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = r"""
local reqs, n, i = {}, 0, 0
function init(args)
  local headers = {["Content-Type"] = "application/json"}
  if args[3] then
    local k, v = args[3]:match("^([^:]+):%s*(.*)$")
    headers[k] = v
  end
  for line in io.lines(args[1]) do
    n = n + 1
    reqs[n] = wrk.format("POST", args[2], headers, line)
  end
end
function request()
  i = i % n + 1
  return reqs[i]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d\n", summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server's CPU time per request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and all its live descendants."""
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        parent[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += ticks.get(p, 0)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return total / TICK


class Wrk:
    def __init__(self) -> None:
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is not installed (apt-get install wrk)")
        self.dir = Path(tempfile.mkdtemp(prefix="wrk-"))
        self.script = self.dir / "post.lua"
        self.script.write_text(LUA)
        self._n = 0

    def bodies(self, lines: list[bytes]) -> Path:
        """A file of request bodies, one JSON document a line, that a run cycles through."""
        self._n += 1
        path = self.dir / f"bodies-{self._n}.txt"
        path.write_bytes(b"\n".join(lines) + b"\n")
        return path

    def run(self, url: str, path: str, bodies: Path, connections: int, seconds: float, server_pid: int,
            header: str | None = None) -> Run:
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "30s", "-s", str(self.script),
                url, "--", str(bodies), path, *([header] if header else [])]
        before = tree_cpu(server_pid)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        cpu = tree_cpu(server_pid) - before
        m = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out.stdout, re.M)
        if out.returncode or not m:
            raise RuntimeError(f"wrk failed: {out.stdout[-1500:]} {out.stderr[-1500:]}")
        requests, duration, status_errors, socket_errors, p50, p99 = map(int, m.groups())
        if status_errors or socket_errors or not requests:
            raise RuntimeError(f"{url}{path}: {status_errors} non-2xx and {socket_errors} socket errors "
                               f"in {requests} requests")
        return Run(requests, duration / 1e6, p50 / 1e3, p99 / 1e3, cpu * 1e3 / requests)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
