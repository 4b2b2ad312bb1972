"""A job's process group written down, so a server that restarts after a crash can stop
what the dead server left running (its jobs die with it in the first place: bwrap's
--die-with-parent and PR_SET_PDEATHSIG; this catches what those miss, e.g. a grandchild
of a job in the no-bwrap fallback).

The record is `<job id>.pid`: the group leader's pid and its start time (clock ticks since
boot, /proc/<pid>/stat field 22). A pid is reused only once nothing refers to it, and a
live process group refers to its leader's pid, so: while any process is still in group P,
P is our job's group; if the leader P is alive with another start time, P was reused and
nothing is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path


def start_time(pid: int) -> int | None:
    """Process `pid`'s start time in clock ticks since boot, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _group(pgid: int) -> list[int]:
    """The pids of the live processes in process group `pgid` now. A zombie (state Z or X)
    is dead already, only not yet waited for (a container's init may be slow to reap the
    orphans a killed server leaves): it runs nothing, so it is not counted."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(entry.path, "stat").read_text()
            state, _ppid, group = stat[stat.rindex(")") + 2:].split()[:3]
            if int(group) == pgid and state not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def record(path: Path, pid: int) -> None:
    """Write down job group `pid`, and which server process started it."""
    me = os.getpid()
    path.write_text(json.dumps({"pid": pid, "start": start_time(pid), "server": me, "server_start": start_time(me)}))


def forget(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def reap(path: Path) -> str | None:
    """Kill the group recorded in `path` if it still runs, and remove the record.
    'killed' (some of it was running), 'gone' (nothing was left), 'alive' (the server that
    started it still runs: left alone) or None (no record)."""
    try:
        saved = json.loads(path.read_text())
        pid, started = int(saved["pid"]), saved.get("start")
        server, server_start = saved.get("server"), saved.get("server_start")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if server is not None and server != os.getpid() and server_start is not None \
            and start_time(int(server)) == server_start:
        return "alive"  # its server still runs (another process on this data directory): not ours
    members = _group(pid)
    leader = start_time(pid)
    reused = leader is not None and started is not None and leader != started
    outcome = "gone"
    if members and not reused:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
            outcome = "killed"
    forget(path)
    return outcome
