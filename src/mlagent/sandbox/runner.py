"""`Sandbox`: one directory per session and a way to run commands in it.

Each command runs in a subprocess under `Limits` (prlimit, or setrlimit when the
`prlimit` binary is missing) with an empty environment apart from what the caller
passes. Where `bwrap` works, the command also runs in fresh pid/ipc/uts (and, unless the
call needs the network, net) namespaces that see only the system's read-only files,
the Python runtime and the session's own directory (mounted at /sandbox); a server
running as root drops to an unprivileged uid inside. Where `bwrap` does not work the
fallback (limits, clean environment, own directory as cwd, no filesystem isolation) is
logged loudly at start-up and reported in every result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import retention
from .cgroups import spawn, task_budget
from .confine import (
    NOBODY,
    SANDBOX_MOUNT,
    IsolationError,
    bwrap_argv,
    bwrap_works,
    die_with_parent,
    isolation,
)
from .disk import DiskGuard
from .limits import Limits, tasks_of_uid
from .paths import SandboxPathError, open_beneath

__all__ = ["NOBODY", "SANDBOX_MOUNT", "RunResult", "Sandbox", "bwrap_argv", "bwrap_works"]

log = logging.getLogger("mlagent.sandbox")

# bwrap reports a child killed by a signal as 128 + signal (SIGKILL, SIGXCPU, SIGXFSZ).
_SIGNAL_EXITS = {128 + signal.SIGKILL, 128 + signal.SIGXCPU, 128 + signal.SIGXFSZ}
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass
class RunResult:
    exit_code: int | None
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    timed_out: bool
    isolation: str
    duration_s: float
    disk_limit_mb: int | None = None  # set when the command was stopped for growing the directory past it

    def summary(self, limit_note: str = "") -> str:
        parts = []
        if self.disk_limit_mb is not None:
            parts.append(f"Stopped: the sandbox directory grew past its disk limit of {self.disk_limit_mb} MB "
                         "(delete files you no longer need).")
        elif self.timed_out:
            parts.append(f"Stopped: the command exceeded its wall-clock limit after {self.duration_s:.1f}s.")
        elif self.exit_code is not None and (self.exit_code < 0 or self.exit_code in _SIGNAL_EXITS):
            sig = -self.exit_code if self.exit_code < 0 else self.exit_code - 128
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            parts.append(f"Killed by {name} (a resource limit: CPU time, memory, processes or file size).")
        parts.append(f"exit code: {self.exit_code}")
        for label, text, total in (("stdout", self.stdout, self.stdout_bytes), ("stderr", self.stderr, self.stderr_bytes)):
            if text:
                cut = f" (first {len(text.encode())} of {total} bytes)" if total > len(text.encode()) else ""
                parts.append(f"--- {label}{cut} ---\n{text.rstrip()}")
        if self.isolation != "bwrap":
            parts.append("(note: ran without bwrap isolation — resource limits and a clean environment only)")
        return "\n".join(parts)


class Sandbox:
    def __init__(self, root: Path, limits: Limits | None = None, isolation: str = "auto") -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o711)
        self.limits = limits or Limits()
        self._prlimit = shutil.which("prlimit")
        self._bwrap = shutil.which("bwrap")
        self._setpriv = shutil.which("setpriv")
        self.isolation = self._choose(isolation)
        # A root server drops sandboxed code to `nobody` (bwrap mode only: the fallback
        # could not reach the Python runtime as another user).
        self.drop_uid: int | None = NOBODY if self.isolation == "bwrap" and os.getuid() == 0 and self._setpriv else None

    # -- setup ----------------------------------------------------------------------
    def _choose(self, wanted: str) -> str:
        return isolation(wanted, "the agent's sandbox commands")  # the one rule (confine.py)

    # -- files ----------------------------------------------------------------------
    def directory(self, session_id: str) -> Path:
        if not _SESSION_RE.match(session_id):
            raise SandboxPathError(f"invalid session id {session_id!r}")
        path = self.root / session_id
        if not path.exists():
            path.mkdir(mode=0o700)
            self._own(path)
        else:
            retention.touch(path)  # its last use, for the retention sweep
        return path

    # -- retention (the runtime's keeper decides which sessions may lose theirs) ------------
    def idle_sessions(self, idle_seconds: float) -> list[str]:
        """Sessions whose directory has not been used for `idle_seconds`."""
        return retention.idle_dirs(self.root, idle_seconds, _SESSION_RE.match)

    def remove(self, session_id: str) -> bool:
        """Take the session's directory away at once (a later use gets a fresh, empty one);
        its files are deleted by `purge`."""
        return _SESSION_RE.match(session_id) is not None and retention.retire(self.root, session_id)

    def purge(self) -> None:
        """Delete removed directories (slow for big ones: call it off the event loop)."""
        retention.purge(self.root)

    def take_reset_notice(self, session_id: str) -> str | None:
        """Once after a removal: what to tell the agent about its vanished files."""
        removed_at = retention.take_tombstone(self.root, session_id) if _SESSION_RE.match(session_id) else None
        if removed_at is None:
            return None
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(removed_at))
        return (f"Note: this session's sandbox directory was deleted on {when} after the session sat idle "
                "past the server's retention period; it is now a fresh, empty directory. Files written in "
                "earlier turns are gone — recreate what you need.")

    def open(self, session_id: str, relative: str, flags: int, *, make_parents: bool = False) -> int:
        """An fd for `relative` in the session directory, opened component by component
        without following any symlink (see `paths.open_beneath`); the caller closes it.
        `/sandbox/...` (the path the sandboxed code sees) is accepted too."""
        rel = relative.strip()
        if rel.startswith(SANDBOX_MOUNT + "/") or rel == SANDBOX_MOUNT:
            rel = rel[len(SANDBOX_MOUNT):].lstrip("/") or "."
        try:
            return open_beneath(self.directory(session_id), rel, flags, make_parents=make_parents,
                                on_mkdir=self._own_fd)
        except SandboxPathError as exc:  # name the path as the caller gave it
            raise SandboxPathError(str(exc).replace(repr(rel), repr(relative), 1)) from None

    def write_bytes(self, session_id: str, relative: str, data: bytes) -> None:
        try:
            fd = self.open(session_id, relative, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, make_parents=True)
        except (IsADirectoryError, NotADirectoryError):
            raise SandboxPathError(f"{relative!r} cannot be written: it or a parent is not what the path "
                                   "says (a directory where a file is expected, or the reverse)") from None
        except OSError as exc:
            raise SandboxPathError(f"cannot write {relative!r} in the sandbox ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:  # a FIFO, or a hard link to a file elsewhere
                raise SandboxPathError(f"{relative!r} is not a regular file in the sandbox")
            self._own_fd(fd)
            os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def read_bytes(self, session_id: str, relative: str, limit: int) -> tuple[bytes, int]:
        try:
            fd = self.open(session_id, relative, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            raise SandboxPathError(f"{relative!r} is not a file in the sandbox") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise SandboxPathError(f"{relative!r} is not a file in the sandbox")
        with os.fdopen(fd, "rb") as fh:
            return fh.read(limit), st.st_size

    def _own_fd(self, fd: int) -> None:
        if self.drop_uid is not None:
            os.fchown(fd, self.drop_uid, self.drop_uid)

    def _own(self, path: Path) -> None:
        if self.drop_uid is not None:
            os.chown(path, self.drop_uid, self.drop_uid)

    # -- commands ---------------------------------------------------------------------
    def python(self) -> str:
        return sys.executable

    def _base_env(self, workdir: str) -> dict[str, str]:
        bindir = str(Path(sys.executable).parent)
        return {"PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8",
                "PYTHONUNBUFFERED": "1", "MPLCONFIGDIR": f"{workdir}/.cache/matplotlib",
                "HF_HOME": f"{workdir}/.cache/huggingface", "TMPDIR": "/tmp"}

    def _bwrap_argv(self, session_dir: Path, network: bool) -> list[str]:
        if self._bwrap is None:  # `_choose` picks bwrap only when it is installed
            raise IsolationError("bwrap is not installed")
        return bwrap_argv(self._bwrap, session_dir, network=network, drop_uid=self.drop_uid, setpriv=self._setpriv)

    async def run(self, session_id: str, argv: list[str], *, env: dict[str, str] | None = None,
                  network: bool = False, wall_seconds: float | None = None, stdin: bytes | None = None) -> RunResult:
        """Run `argv` in the session's directory; kill everything it started on timeout or cancel."""
        session_dir = self.directory(session_id)
        workdir = SANDBOX_MOUNT if self.isolation == "bwrap" else str(session_dir)
        full_env = {**self._base_env(workdir), **(env or {})}
        budget = task_budget(self.limits.max_processes)  # this command's own process limit
        uid = self.drop_uid if self.drop_uid is not None else os.getuid()
        if budget is not None:
            extra = None
        else:  # RLIMIT_NPROC: shared with every process of the uid
            extra = tasks_of_uid(uid) if (uid != 0 or self.drop_uid is not None) else 0
        cmd: list[str] = []
        if self._prlimit:
            cmd += [self._prlimit, *self.limits.prlimit_args(extra), "--"]

            def preexec() -> None:
                die_with_parent(budget)
        else:
            limits = self.limits

            def preexec() -> None:
                die_with_parent(budget)
                limits.setrlimit(extra)
        if self.isolation == "bwrap":
            cmd += self._bwrap_argv(session_dir, network) + list(argv)
        else:
            cmd += list(argv)
        wall = wall_seconds if wall_seconds is not None else self.limits.wall_seconds
        started = time.monotonic()
        proc = await spawn(
            budget, *cmd, cwd=str(session_dir), env=full_env, start_new_session=True, preexec_fn=preexec,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        cap = self.limits.output_bytes
        out_task = asyncio.ensure_future(_read_capped(proc.stdout, cap))
        err_task = asyncio.ensure_future(_read_capped(proc.stderr, cap))
        timed_out = False
        try:
            if stdin is not None and proc.stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                proc.stdin.close()
            async with DiskGuard([session_dir], self.limits.disk_mb, lambda: _kill_group(proc), baseline=True) as disk:
                try:
                    await asyncio.wait_for(proc.wait(), timeout=wall)
                except TimeoutError:
                    timed_out = True
                    _kill_group(proc)
                    await proc.wait()
        except BaseException:
            _kill_group(proc)  # cancelled turn (or any failure): nothing may outlive the call
            with contextlib.suppress(BaseException):
                await asyncio.shield(asyncio.wait_for(proc.wait(), 5))
            out_task.cancel()
            err_task.cancel()
            raise
        if self.isolation != "bwrap":
            # Stragglers left in the group after the leader exited (with bwrap, the pid
            # namespace dies with its init and takes them along).
            _kill_group(proc)
        (out, out_total), (err, err_total) = await asyncio.gather(out_task, err_task)
        return RunResult(exit_code=proc.returncode, stdout=out.decode(errors="replace"),
                         stderr=err.decode(errors="replace"), stdout_bytes=out_total, stderr_bytes=err_total,
                         timed_out=timed_out, isolation=self.isolation, duration_s=time.monotonic() - started,
                         disk_limit_mb=self.limits.disk_mb if disk.tripped else None)


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _read_capped(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, int]:
    """Keep the first `cap` bytes, count (and drain) the rest."""
    if stream is None:
        return b"", 0
    kept = bytearray()
    total = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(kept), total
        total += len(chunk)
        if len(kept) < cap:
            kept += chunk[: cap - len(kept)]
