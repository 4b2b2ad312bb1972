"""The `local` job backend: a subprocess on this machine, in the sandbox, under limits and a wall clock.

Each job runs inside bwrap when the spec says so (sandbox/confine.py: the same rule as the
agent's commands and the serving workers), in its own session (process group), and dies
with the server (--die-with-parent, PR_SET_PDEATHSIG). Cancel and the wall clock kill the
whole group. stdout and stderr go to `<root>/<job id>.log`, opened by the server (the job
never sees the path). The group is also written to `<root>/<job id>.pid` while the job
runs, so a server restarting after a crash can `reap` whatever it left (jobs/orphans.py).
State lives in this process: a restart loses running local jobs, and the caller (e.g. the
training service) records that."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..sandbox.cgroups import spawn
from ..sandbox.confine import drop_uid, wrap
from ..sandbox.disk import DiskGuard
from . import orphans
from .base import JobSpec, JobState
from .limits import budget, preexec

_SIGNAL_REASONS: dict[int, str] = {signal.SIGXCPU: "CPU time limit exceeded", signal.SIGKILL: "killed (SIGKILL)",
                                   signal.SIGXFSZ: "file size limit exceeded", signal.SIGSEGV: "crashed (SIGSEGV)"}
# bwrap reports a command killed by a signal as exit status 128 + signal.
_BWRAP_SIGNALS = {128 + s: s for s in _SIGNAL_REASONS}


@dataclass
class _Job:
    spec: JobSpec
    state: JobState
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    task: asyncio.Task | None = None


class LocalBackend:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._jobs: dict[str, _Job] = {}

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def _pidfile(self, job_id: str) -> Path:
        return self.root / f"{job_id}.pid"

    async def submit(self, spec: JobSpec) -> str:
        job_id = f"local-{uuid.uuid4().hex[:16]}"
        job = _Job(spec, JobState(id=job_id, status="queued"), self.root / f"{job_id}.log")
        self._jobs[job_id] = job
        job.task = asyncio.create_task(self._run(job_id, job), name=f"job-{job_id}")
        return job_id

    def _command(self, spec: JobSpec) -> tuple[list[str], int | None]:
        """The argv to start and the uid the job's code will run as (None: the server's)."""
        if spec.isolation == "none":
            return list(spec.argv), None
        return wrap(spec.argv, spec.workdir, network=spec.network, mounts=spec.mounts,
                    with_source=spec.with_source), drop_uid()

    async def _run(self, job_id: str, job: _Job) -> None:
        spec = job.spec
        pidfile = self._pidfile(job_id)
        try:
            argv, uid = self._command(spec)
            own = budget(spec.limits)
            with open(job.log_path, "ab") as log:  # noqa: ASYNC230 - a local file, opened once
                job.proc = await spawn(
                    own, *argv, cwd=spec.workdir, env=spec.env, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                    stderr=asyncio.subprocess.STDOUT, preexec_fn=preexec(spec.limits, uid, own))
            orphans.record(pidfile, job.proc.pid)
            job.state = job.state.model_copy(update={"status": "running", "started_at": time.time()})
            timed_out = False
            writable = [spec.workdir, *(Path(m.host) for m in spec.mounts if m.writable)]
            async with DiskGuard(writable, spec.limits.disk_mb, lambda: self._kill(job)) as disk:
                try:
                    await asyncio.wait_for(job.proc.wait(), spec.limits.wall_seconds)
                except TimeoutError:
                    timed_out = True
                    self._kill(job)
                    await job.proc.wait()
            self._kill(job)  # stragglers the job left in its group (the fallback has no pid namespace)
            code = job.proc.returncode
            if spec.isolation == "bwrap" and code in _BWRAP_SIGNALS:
                code = -_BWRAP_SIGNALS[code]
            if job.cancel_requested:
                status, reason = "cancelled", "cancelled on request"
            elif disk.tripped:
                status, reason = "failed", f"disk limit of {spec.limits.disk_mb} MB exceeded"
            elif timed_out:
                status, reason = "failed", f"wall clock limit of {spec.limits.wall_seconds:g}s exceeded"
            elif code == 0:
                status, reason = "succeeded", None
            elif code is not None and code < 0:
                status, reason = "failed", _SIGNAL_REASONS.get(-code, f"killed by signal {-code}")
            else:
                status, reason = "failed", f"exited with code {code}"
            job.state = job.state.model_copy(update={"status": status, "exit_code": code, "reason": reason,
                                                     "finished_at": time.time()})
        except Exception as exc:  # noqa: BLE001 - e.g. the program does not exist
            job.state = job.state.model_copy(update={"status": "failed", "reason": f"could not start: {exc}",
                                                     "finished_at": time.time()})
        finally:
            orphans.forget(pidfile)
            job.done.set()

    @staticmethod
    def _kill(job: _Job) -> None:
        if job.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.proc.pid, signal.SIGKILL)

    def reap(self, job_id: str) -> str | None:
        """After a crash: kill what a dead server's job `job_id` left running (orphans.reap)."""
        return orphans.reap(self._pidfile(job_id))

    async def status(self, job_id: str) -> JobState:
        return self._job(job_id).state

    async def logs(self, job_id: str, tail_bytes: int | None = None) -> str:
        path = self._job(job_id).log_path
        if not path.exists():
            return ""
        with open(path, "rb") as f:  # noqa: ASYNC230 - a bounded local read
            if tail_bytes is not None:
                f.seek(max(0, path.stat().st_size - tail_bytes))
            return f.read().decode("utf-8", errors="replace")

    async def cancel(self, job_id: str) -> JobState:
        job = self._job(job_id)
        if not job.done.is_set():
            job.cancel_requested = True
            self._kill(job)
            await job.done.wait()
        return job.state

    async def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        job = self._job(job_id)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done.wait(), timeout)
        return job.state

    async def shutdown(self) -> None:
        for job in self._jobs.values():
            if not job.done.is_set():
                job.cancel_requested = True
                self._kill(job)
