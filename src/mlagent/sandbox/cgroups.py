"""The cgroups untrusted code runs in (docs/security.md), made by a root server where the
cgroup filesystem is writable (cgroup v1's cpu and pids hierarchies, or v2 with those
controllers enabled down to ours):

- one CPU cgroup, `mlagent-untrusted`, for all untrusted code together, weighing as much as
  one ordinary process: a fork bomb's 30 spinning processes count as one, and the sandboxes
  are never starved either;
- one pids cgroup per sandbox below it (`TaskBudget`), its own process limit. RLIMIT_NPROC
  counts every process of the real uid, so sandboxes that all run as `nobody` would share one
  budget, and one sandbox's fork bomb would starve another's training; `pids.max` does not.

Where they cannot be made (not root, no writable cgroup filesystem), nice 19 and RLIMIT_NPROC
are what is left (the callers ask `task_budget` and fall back when it says None)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mlagent.sandbox")

CGROUP = "mlagent-untrusted"
# bwrap's own two processes (the outer one and the namespace's init) are in the sandbox's
# cgroup too; RLIMIT_NPROC never counted them (they run as root).
BWRAP_TASKS = 2


@dataclass(frozen=True)
class _Groups:
    cpu_procs: str | None = None  # cgroup.procs of the shared CPU cgroup
    pids: Path | None = None  # where the per-sandbox pids cgroups are made


_groups: _Groups | None = None
_serial = itertools.count()
_removals: set[asyncio.Task] = set()


def untrusted_cgroup() -> str | None:
    """The `cgroup.procs` of the shared CPU cgroup (None where there is none); the cgroups
    are made on the first call, before any untrusted process starts."""
    return _find().cpu_procs


def _find() -> _Groups:
    global _groups
    if _groups is None:
        _groups = _make()
    return _groups


def _make() -> _Groups:
    try:
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return _Groups()
    cpu_procs, pids = None, None
    for fields in mounts:
        if len(fields) < 4:
            continue
        where, fstype, options = Path(fields[1]), fields[2], fields[3].split(",")
        if fstype == "cgroup" and "cpu" in options and cpu_procs is None:
            group = _mkdir(where / CGROUP, {"cpu.shares": "1024"})
            cpu_procs = str(group / "cgroup.procs") if group else None
        elif fstype == "cgroup" and "pids" in options and pids is None:
            pids = _mkdir(where / CGROUP, {})
        elif fstype == "cgroup2" and cpu_procs is None and pids is None:
            cpu_procs, pids = _make_v2(where)
    if cpu_procs:
        log.info("untrusted code runs in the CPU cgroup %s (least weight)", Path(cpu_procs).parent)
    if pids:
        log.info("each sandbox gets its own process limit: a pids cgroup under %s", pids)
        _sweep(pids)
    return _Groups(cpu_procs, pids)


def _make_v2(root: Path) -> tuple[str | None, Path | None]:
    """On cgroup v2 a cgroup with controllers enabled for its children may hold no process
    itself: with pids, every process is in its sandbox's group below `mlagent-untrusted`
    (whose CPU weight then covers them all); without, in `mlagent-untrusted` itself."""
    try:
        available = (root / "cgroup.controllers").read_text().split()
    except OSError:
        return None, None
    enabled = [c for c in ("cpu", "pids") if c in available and _write(root / "cgroup.subtree_control", f"+{c}")]
    if not enabled:
        return None, None
    group = _mkdir(root / CGROUP, {"cpu.weight": "100"} if "cpu" in enabled else {})
    if group is None:
        return None, None
    if "pids" in enabled and _write(group / "cgroup.subtree_control", "+pids"):
        return None, group
    return (str(group / "cgroup.procs") if "cpu" in enabled else None), None


def _mkdir(group: Path, settings: dict[str, str]) -> Path | None:
    try:
        group.mkdir(exist_ok=True)
        for name, value in settings.items():
            (group / name).write_text(value)
    except OSError:
        return None
    return group


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True


def _sweep(parent: Path) -> None:
    """Remove the empty groups a dead server left (named `<server pid>-<n>`)."""
    for group in parent.iterdir():
        pid = group.name.split("-")[0]
        if group.is_dir() and pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                group.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TaskBudget:
    """One sandbox's own process limit: a pids cgroup its first process joins before exec
    (`join`), so everything it starts counts against `pids.max` and nothing else does; when
    that process has ended (`follow`), what is left in the group is killed and it is removed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def join(self) -> None:
        """In the child before exec. Raises if it cannot (the process would have no limit)."""
        with open(self.path / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))

    def follow(self, proc: asyncio.subprocess.Process) -> None:
        """Remove the group once `proc` has exited."""
        task = asyncio.ensure_future(self._remove_after(proc))
        _removals.add(task)
        task.add_done_callback(_removals.discard)

    async def _remove_after(self, proc: asyncio.subprocess.Process) -> None:
        await proc.wait()
        for _ in range(100):  # stragglers (a pid namespace dying, a fallback's orphans) take a moment
            if self.remove():
                return
            await asyncio.sleep(0.05)
        log.warning("the process group %s could not be removed: processes are left in it", self.path)

    def remove(self) -> bool:
        """Kill what is left in the group and remove it; False while processes remain."""
        try:
            self.path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            pass
        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
        return False


async def spawn(budget: TaskBudget | None, *argv: str, **kwargs) -> asyncio.subprocess.Process:
    """`asyncio.create_subprocess_exec(*argv, **kwargs)` whose `budget` (joined by its
    preexec_fn) is removed when the process ends, or at once when it cannot start."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, **kwargs)
    except BaseException:
        if budget is not None:
            budget.remove()
        raise
    if budget is not None:
        budget.follow(proc)
    return proc


def task_budget(max_tasks: int) -> TaskBudget | None:
    """A new pids cgroup allowing `max_tasks` processes and threads (plus bwrap's own), or
    None where the server cannot make one: then RLIMIT_NPROC is the limit."""
    parent = _find().pids
    if parent is None:
        return None
    group = _mkdir(parent / f"{os.getpid()}-{next(_serial)}", {"pids.max": str(max_tasks + BWRAP_TASKS)})
    if group is None:
        log.warning("could not make a pids cgroup under %s: the sandbox's process limit is RLIMIT_NPROC", parent)
        return None
    return TaskBudget(group)
