"""A local Ray head on loopback for tests and benchmarks: its own temporary directory and
ports, stopped by the ids of the processes it started (never `ray stop`, which stops every
Ray on the machine, other test runs' too)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .fakes.serve import free_port

RAY = Path(sys.executable).parent / "ray"


def _family(roots: set[int]) -> set[int]:
    """`roots` and all their descendants, now."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    family, grew = set(roots), True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return family


def _ours(temp: str) -> set[int]:
    """The Ray processes whose command line names our temporary directory, and theirs."""
    roots = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if temp.encode() in Path(entry.path, "cmdline").read_bytes():
                    roots.add(int(entry.name))
    return _family(roots)



@contextlib.contextmanager
def ray_head(cpus: int = 2) -> Iterator[str]:
    """Start a head (job API on a free loopback port), yield its address, stop it."""
    temp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # short: Ray's unix socket paths are bounded
    dashboard = free_port()
    ports = {"--port": free_port(), "--dashboard-port": dashboard, "--ray-client-server-port": free_port(),
             "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
             "--metrics-export-port": free_port(), "--runtime-env-agent-port": free_port(),
             "--node-manager-port": free_port(), "--object-manager-port": free_port()}
    argv = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
            f"--num-cpus={cpus}", "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp}",
            "--min-worker-port=0", "--max-worker-port=0",  # any free ports: other heads may run here
            *(f"{k}={v}" for k, v in ports.items())]
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=240,
                              env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        if done.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{done.stdout}\n{done.stderr}")
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        pids = _ours(temp)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        time.sleep(2)
        for pid in pids | _ours(temp):  # what ignored SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
