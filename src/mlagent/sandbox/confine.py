"""How every process of untrusted code is started: the agent's commands (runner.py), the
jobs (jobs/local.py: `/mltraining` jobs and the local fine-tuning trainer of
finetune/local.py) and the serving workers that load uploaded models (serving/launch.py).

One rule for all of them (docs/security.md): inside `bwrap` where it works, with fresh
pid/ipc/uts/cgroup (and, unless granted, net) namespaces, the system and the Python runtime
read-only, a private /tmp, an empty per-process directory read-write at /sandbox and only
the process's own inputs bind-mounted; a root server drops the code to `nobody`; the
environment is built from nothing (no server variable reaches it); each agent command,
job and serving worker (with all it starts) has its own process limit, a pids cgroup
(cgroups.py). Where bwrap does not
work, MLAGENT_SANDBOX_ISOLATION=auto falls back to limits + clean environment + own
directory, logged loudly once per kind of work; `bwrap` refuses to start instead.

Every such process also dies with the server: bwrap's --die-with-parent (which takes the
whole pid namespace along) and, in the child before exec, PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .cgroups import TaskBudget, untrusted_cgroup

log = logging.getLogger("mlagent.sandbox")

SANDBOX_MOUNT = "/sandbox"
NOBODY = 65534
SRC = str(Path(__file__).resolve().parents[2])  # where `mlagent` is imported from
_PR_SET_PDEATHSIG = 1
_cgroup_procs: str | None = None  # the shared CPU cgroup's, looked up before any child forks
TMP_BYTES = 512 * 1024 * 1024  # the private /tmp of each sandboxed process
UNTRUSTED_NICE = 19  # CPU weight 15 against the server's 1024 (nice 0)


class IsolationError(RuntimeError):
    """MLAGENT_SANDBOX_ISOLATION=bwrap, but bwrap does not work here."""


@dataclass(frozen=True)
class Mount:
    """`host` (a file or a directory) seen at `inside`; read-only unless `writable`."""

    host: str
    inside: str
    writable: bool = False


@functools.lru_cache(maxsize=16)
def isolation(wanted: str, what: str = "sandboxed code") -> str:
    """'bwrap' or 'none' for MLAGENT_SANDBOX_ISOLATION `wanted` (auto | bwrap | none),
    probed once per (`wanted`, `what`); the fallback is logged as a warning naming `what`."""
    global _cgroup_procs
    _cgroup_procs = untrusted_cgroup()  # before any untrusted process starts (they join it in die_with_parent)
    if wanted == "none":
        log.warning("%s runs WITHOUT bwrap isolation (MLAGENT_SANDBOX_ISOLATION=none): resource limits and a "
                    "clean environment only; it can read every file the server can read", what)
        return "none"
    bwrap = shutil.which("bwrap")
    if bwrap_works(bwrap):
        return "bwrap"
    if wanted == "bwrap":
        raise IsolationError("MLAGENT_SANDBOX_ISOLATION=bwrap but bwrap is missing or does not work here")
    log.warning("bwrap is %s: FALLBACK for %s: it runs with resource limits, a clean environment and its own "
                "directory, but WITHOUT filesystem, network or user isolation (install bubblewrap, or set "
                "MLAGENT_SANDBOX_ISOLATION=bwrap to refuse to run without it)",
                "not installed" if not bwrap else "not usable (no user namespaces?)", what)
    return "none"


def drop_uid() -> int | None:
    """The uid untrusted code runs as under bwrap: `nobody` when the server is root (else its own)."""
    return NOBODY if os.getuid() == 0 and shutil.which("setpriv") else None


def wrap(argv: Sequence[str], home: Path, *, network: bool = False, mounts: Sequence[Mount] = (),
         with_source: bool = False) -> list[str]:
    """`argv` run inside bwrap with `home` read-write at /sandbox (its cwd), plus `mounts`;
    `with_source` also binds this package's source read-only (for `python -m mlagent...`).
    A root server's code runs as `nobody`: `home` (and writable mounts) are given to it."""
    drop = drop_uid()
    if drop is not None:
        for path in [home, *(Path(m.host) for m in mounts if m.writable)]:
            os.chown(path, drop, drop)
    binds = (SRC,) if with_source and not SRC.startswith(("/usr/", sys.prefix)) else ()
    return bwrap_argv(shutil.which("bwrap") or "bwrap", home, network=network, drop_uid=drop,
                      setpriv=shutil.which("setpriv"), ro_binds=binds, mounts=mounts) + list(argv)


def _libc_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the start-up reaper is all there is
        return None


_prctl = _libc_prctl()  # looked up here: a forked child should not dlopen


def die_with_parent(budget: TaskBudget | None = None) -> None:
    """In a child before exec: SIGKILL it when the server dies, even by SIGKILL; run it with
    little CPU weight, so a busy sandbox (a fork bomb spinning on its process limit) cannot
    crowd out the server: in the `mlagent-untrusted` cgroup where the server could make one
    (cgroups.py), and at nice 19 (which alone is not enough: with autogroups, every new
    session - bwrap makes one - gets its own share); and in its own process `budget`."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpriority(os.PRIO_PROCESS, 0, UNTRUSTED_NICE)
    if _cgroup_procs:
        try:
            with open(_cgroup_procs, "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
    if budget is not None:
        budget.join()


def bwrap_works(bwrap: str | None) -> bool:
    """Whether `bwrap` can make the namespaces we use here (user namespaces may be off)."""
    if not bwrap:
        return False
    try:
        done = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net",
                               "--die-with-parent", "true"], check=False, capture_output=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def bwrap_argv(bwrap: str, session_dir: Path, *, network: bool, drop_uid: int | None = None,
               setpriv: str | None = None, ro_binds: tuple[str, ...] = (),
               mounts: Sequence[Mount] = ()) -> list[str]:
    """bwrap's argv up to the command: fresh pid/ipc/uts (and, unless `network`, net)
    namespaces seeing the system's read-only files, the Python runtime and `ro_binds`
    read-only, a private /tmp, `session_dir` read-write at /sandbox (the cwd), then `mounts`."""
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--share-net" if network else "--unshare-net"]
    for top in ("/usr", "/etc"):
        argv += ["--ro-bind", top, top]
    for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    # /tmp first: the runtime directories bound below may live under /tmp (a CI clone).
    # /tmp is memory (tmpfs), outside RLIMIT_AS: sized, or it could fill the host's RAM.
    argv += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    made: set[str] = {"/", "/usr", "/etc", "/tmp", "/dev", "/proc"}
    for prefix in [*_runtime_dirs(), *ro_binds]:
        if prefix in made:
            continue
        for parent in reversed(Path(prefix).parents):
            if str(parent) not in made:
                made.add(str(parent))
                argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", prefix, prefix]
        made.add(prefix)
    argv += ["--bind", str(session_dir), SANDBOX_MOUNT]
    for m in mounts:
        for parent in reversed(Path(m.inside).parents):  # bwrap would make missing ones 0700
            if str(parent) not in made and not str(parent).startswith(SANDBOX_MOUNT):
                made.add(str(parent))
                argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--bind" if m.writable else "--ro-bind", m.host, m.inside]
        made.add(m.inside)
    argv += ["--chdir", SANDBOX_MOUNT]
    # The environment reaches the command through bwrap's own (already clean) environment,
    # never its argv: argv is visible to every process on the host (`ps`).
    if drop_uid is not None and setpriv:
        argv += [setpriv, f"--reuid={drop_uid}", f"--regid={drop_uid}", "--clear-groups", "--"]
    return argv


def _runtime_dirs() -> list[str]:
    """Directories holding the Python runtime sandboxed code may use (read-only)."""
    dirs = []
    for prefix in {sys.prefix, sys.base_prefix, "/usr/local"}:
        real = os.path.realpath(prefix)
        if os.path.isdir(real) and not real.startswith(("/usr/", "/etc/")) and real not in ("/usr", "/"):
            dirs.append(real)
        if prefix != real and os.path.isdir(prefix) and not prefix.startswith("/usr/"):
            dirs.append(prefix)
    return sorted(set(dirs), key=len)
