"""The `local` job backend: a subprocess on this machine under setrlimit limits and a wall clock.

Each job runs in its own session (process group); cancel and the wall clock kill the whole
group. stdout and stderr go to `<root>/<job id>.log`. State lives in this process: a server
restart loses running local jobs, and the caller (e.g. the training service) records that."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .base import JobSpec, JobState
from .limits import preexec

_SIGNAL_REASONS = {signal.SIGXCPU: "CPU time limit exceeded", signal.SIGKILL: "killed (SIGKILL)",
                   signal.SIGXFSZ: "file size limit exceeded", signal.SIGSEGV: "crashed (SIGSEGV)"}


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

    async def submit(self, spec: JobSpec) -> str:
        job_id = f"local-{uuid.uuid4().hex[:16]}"
        job = _Job(spec, JobState(id=job_id, status="queued"), self.root / f"{job_id}.log")
        self._jobs[job_id] = job
        job.task = asyncio.create_task(self._run(job), name=f"job-{job_id}")
        return job_id

    async def _run(self, job: _Job) -> None:
        spec = job.spec
        try:
            with open(job.log_path, "ab") as log:
                job.proc = await asyncio.create_subprocess_exec(
                    *spec.argv, cwd=spec.workdir, env=spec.env, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                    stderr=asyncio.subprocess.STDOUT, preexec_fn=preexec(spec.limits))
            job.state = job.state.model_copy(update={"status": "running", "started_at": time.time()})
            timed_out = False
            try:
                await asyncio.wait_for(job.proc.wait(), spec.limits.wall_seconds)
            except asyncio.TimeoutError:
                timed_out = True
                self._kill(job)
                await job.proc.wait()
            code = job.proc.returncode
            if job.cancel_requested:
                status, reason = "cancelled", "cancelled on request"
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
            job.done.set()

    @staticmethod
    def _kill(job: _Job) -> None:
        if job.proc is not None and job.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job.proc.pid, signal.SIGKILL)

    async def status(self, job_id: str) -> JobState:
        return self._job(job_id).state

    async def logs(self, job_id: str, tail_bytes: int | None = None) -> str:
        path = self._job(job_id).log_path
        if not path.exists():
            return ""
        with open(path, "rb") as f:
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
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(job.done.wait(), timeout)
        return job.state

    async def shutdown(self) -> None:
        for job in self._jobs.values():
            if not job.done.is_set():
                job.cancel_requested = True
                self._kill(job)
