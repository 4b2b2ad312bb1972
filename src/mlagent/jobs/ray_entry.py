"""The entrypoint of a Ray job (`python -m mlagent.jobs.ray_entry`), run by Ray on a worker.

It runs on the worker as the Ray user, and runs the job's code exactly as the `local`
backend does on the server (jobs/local.py, sandbox/confine.py: bwrap, `nobody`, no
network, the clean environment, limits, a wall clock, the disk guard), streaming the job's
output to its own stdout, which is the Ray job's log. With a blob prefix (a worker on
another host) it first fetches the job's inputs from the blob store into a private
temporary directory and afterwards uploads the writable mounts back (jobs/transfer.py);
without one it uses the server's paths (same machine or a shared filesystem).

The job is described by one JSON value in the environment variable `MLAGENT_RAY_JOB`
(`RayJob`, set by the server in the job's runtime environment). The last line it prints
is `RESULT_MARK <nonce> {status, exit_code, reason}`: what the server records. A bwrap that
does not work on the worker fails the job when the server asked for bwrap: uploaded code
never runs unconfined because a node lacks the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..sandbox.confine import SRC, IsolationError, Mount, isolation
from . import transfer
from .base import JobSpec, JobState
from .local import LocalBackend

ENV = "MLAGENT_RAY_JOB"
RESULT_MARK = "::mlagent-job-result::"
PYTHON = "{python}"  # argv[0] placeholder: the worker's own interpreter


class Copy(BaseModel):
    """One of the job's trees in the blob store: `index` -1 is the home (workdir)."""

    index: int
    kind: Literal["file", "dir"]


class RayJob(BaseModel):
    spec: JobSpec
    nonce: str
    blob_url: str | None = None  # set: inputs and outputs travel through the blob store
    s3_endpoint_url: str | None = None
    blob_prefix: str | None = None
    copies: list[Copy] = Field(default_factory=list)


def _localise(job: RayJob, blobs, tmp: Path) -> JobSpec:
    """The spec with its trees fetched into `tmp` and every host path pointing there."""
    spec = job.spec
    moved: dict[str, str] = {}
    for c in job.copies:
        old = spec.workdir if c.index < 0 else Path(spec.mounts[c.index].host)
        new = tmp / ("home" if c.index < 0 else f"m{c.index}")
        transfer.pull(blobs, f"{job.blob_prefix}/m{c.index}", new, c.kind)
        moved[str(old)] = str(new)

    def remap(value: str) -> str:  # the no-bwrap fallback names host paths in argv and env
        for old, new in moved.items():
            if value == old or value.startswith(old + "/"):
                return new + value[len(old):]
        return value

    mounts = [Mount(remap(m.host), m.inside, m.writable) for m in spec.mounts]
    return spec.model_copy(update={"workdir": Path(remap(str(spec.workdir))), "mounts": mounts,
                                   "argv": [remap(a) for a in spec.argv],
                                   "env": {k: remap(v) for k, v in spec.env.items()}})


async def _run(spec: JobSpec, root: Path) -> JobState:
    """Run `spec` with the local backend, copying its log to stdout as it grows; SIGTERM
    (Ray's stop_job) cancels it."""
    backend = LocalBackend(root)
    job_id = await backend.submit(spec)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(backend.cancel(job_id)))
    log_path, offset = root / f"{job_id}.log", 0
    while True:
        state = await backend.wait(job_id, timeout=0.2)
        with contextlib.suppress(FileNotFoundError), open(log_path, "rb") as f:  # noqa: ASYNC230 - small reads
            f.seek(offset)
            chunk = f.read()
            offset += len(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        if state.finished:
            return state


def main() -> int:
    job = RayJob.model_validate_json(os.environ[ENV])
    spec = job.spec
    with tempfile.TemporaryDirectory(prefix="mlagent-ray-") as tmp:
        blobs = None
        try:
            if job.blob_prefix:
                from ..blobs import open_blob_store

                blobs = open_blob_store(job.blob_url, Path(tmp) / "blobs", s3_endpoint_url=job.s3_endpoint_url)
                spec = _localise(job, blobs, Path(tmp))
            if spec.argv and spec.argv[0] == PYTHON:
                spec = spec.model_copy(update={"argv": [sys.executable, *spec.argv[1:]]})
            if spec.with_source:  # `python -m mlagent...`: this worker's copy of the package
                spec = spec.model_copy(update={"env": {**spec.env, "PYTHONPATH": SRC}})
            if spec.isolation == "bwrap":
                isolation("bwrap", "a Ray job (uploaded code)")
            state = asyncio.run(_run(spec, Path(tmp) / "run"))
            if blobs is not None:
                for c in job.copies:
                    if c.index >= 0 and spec.mounts[c.index].writable:
                        transfer.push(blobs, f"{job.blob_prefix}/out{c.index}", Path(spec.mounts[c.index].host))
        except IsolationError as exc:
            state = JobState(id="-", status="failed", reason=f"the Ray worker {os.uname().nodename} cannot "
                             f"sandbox the job: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported to the server as the job's reason
            state = JobState(id="-", status="failed", reason=f"the Ray entrypoint failed: {type(exc).__name__}: {exc}")
    result = state.model_dump_json(include={"status", "exit_code", "reason"})
    print(f"\n{RESULT_MARK} {job.nonce} {result}", flush=True)
    return 0 if state.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
