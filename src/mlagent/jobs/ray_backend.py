"""The `ray` job backend: each job is a Ray job, submitted through the Ray Jobs API
(`ray.job_submission.JobSubmissionClient`, the cluster's dashboard address).

The Ray job's entrypoint is `python -m mlagent.jobs.ray_entry`, which runs the job's code
on the worker under the same sandbox as the `local` backend (jobs/ray_entry.py); the job's
description travels in its runtime environment (no secret is in it: the job's environment
is already the scrubbed one). Inputs and outputs use the server's paths (`paths`: one
machine or a shared filesystem) or the blob store (`blobs`: inputs pushed before submit,
the writable mounts fetched back when the job has finished; jobs/transfer.py).

The backend keeps no state a restart would lose: the job id is Ray's submission id, and
status, logs and the job's description are read back from Ray, so a restarted server
`reattach`es to jobs that kept running on the cluster. Docs: docs/scaling.md, "Ray"."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ..blobs import BlobStore
from ..errors import ServiceError
from ..sandbox.confine import SRC
from . import transfer
from .base import FINISHED, JobSpec, JobState
from .placement import Placement
from .ray_entry import ENV, PYTHON, RESULT_MARK, Copy, RayJob

_STATUS = {"PENDING": "queued", "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed",
           "STOPPED": "cancelled"}
RAY_NAMES = {"*", "ray"}


class RayBackend:
    name = "ray"

    def __init__(self, address: str, *, blobs: BlobStore | None = None, blob_url: str | None = None,
                 s3_endpoint_url: str | None = None, runtime_env: dict | None = None, python: str | None = None,
                 cpus: float = 1.0, poll_seconds: float = 0.5) -> None:
        """`blobs` set: inputs and outputs go through it (`blob_url`, `s3_endpoint_url`:
        how the worker opens the same store; its credentials come from the worker's own
        environment, never from the job)."""
        self.address = address
        self.blobs, self.blob_url, self.s3_endpoint_url = blobs, blob_url, s3_endpoint_url
        self.runtime_env = runtime_env or {}
        self.python = python or sys.executable
        self.cpus = cpus
        self.poll_seconds = poll_seconds
        self._client = None
        self._final: dict[str, JobState] = {}

    async def _call(self, method: str, *args, **kwargs):
        def call():
            from ray.job_submission import (
                JobSubmissionClient,  # ray only when this backend is chosen
            )

            if self._client is None:
                self._client = JobSubmissionClient(self.address)
            return getattr(self._client, method)(*args, **kwargs)

        try:
            return await asyncio.to_thread(call)
        except RuntimeError as exc:
            if "does not exist" in str(exc):
                raise KeyError(args[0] if args else method) from None
            raise
        except OSError as exc:  # ConnectionError, or requests' errors once the client exists
            raise ServiceError(503, "job_backend_unavailable", f"The Ray cluster at {self.address} cannot be "
                               f"reached: {str(exc).rstrip('.')}.", None) from None

    def check_placement(self, placement: Placement) -> None:
        if placement.clusterID not in RAY_NAMES:
            raise ServiceError(422, "placement_unavailable", f"Cluster {placement.clusterID!r} is not available: "
                               "this server runs jobs on its Ray cluster (clusterID '*' or 'ray').",
                               "placement.clusterID", retryable=False)
        if placement.node != "*":
            raise ServiceError(422, "placement_unavailable", "Ray places each job on a node itself: node must "
                               "be '*'.", "placement.node", retryable=False)

    async def submit(self, spec: JobSpec) -> str:
        sid = f"mlagent-{spec.name}-{uuid.uuid4().hex[:8]}"
        if spec.argv and spec.argv[0] == sys.executable:
            spec = spec.model_copy(update={"argv": [PYTHON, *spec.argv[1:]]})
        job = RayJob(spec=spec, nonce=secrets.token_hex(16))
        if self.blobs is not None:
            prefix = f"jobs/ray/{sid}"
            copies = await asyncio.to_thread(self._push_inputs, prefix, spec)
            job = job.model_copy(update={"blob_url": self.blob_url, "s3_endpoint_url": self.s3_endpoint_url,
                                         "blob_prefix": prefix, "copies": copies})
        env = {**self.runtime_env.get("env_vars", {}), ENV: job.model_dump_json(), "PYTHONPATH": SRC}
        await self._call("submit_job", entrypoint=f"{shlex.quote(self.python)} -m mlagent.jobs.ray_entry",
                         submission_id=sid, runtime_env={**self.runtime_env, "env_vars": env},
                         metadata={"mlagent_job": spec.name}, entrypoint_num_cpus=self.cpus)
        return sid

    def _push_inputs(self, prefix: str, spec: JobSpec) -> list[Copy]:
        assert self.blobs is not None  # only called with a blob store (MLAGENT_RAY_TRANSFER=blobs)
        blobs = self.blobs
        trees = [(-1, spec.workdir), *((i, Path(m.host)) for i, m in enumerate(spec.mounts))]
        return [Copy(index=i, kind=transfer.push(blobs, f"{prefix}/m{i}", path)) for i, path in trees]

    async def _job(self, job_id: str) -> tuple[Any, RayJob | None]:
        info = await self._call("get_job_info", job_id)
        raw = ((info.runtime_env or {}).get("env_vars") or {}).get(ENV)
        return info, (RayJob.model_validate_json(raw) if raw else None)

    async def reattach(self, job_id: str) -> bool:
        """Whether `job_id` is a job of ours Ray still knows (running or finished): a
        restarted server follows it on instead of failing it. While the cluster cannot be
        reached the answer is yes: the follower keeps polling until it can (`wait`)."""
        try:
            return (await self._job(job_id))[1] is not None
        except (KeyError, ValueError):
            return False
        except ServiceError:
            return True

    async def status(self, job_id: str) -> JobState:
        if job_id in self._final:
            return self._final[job_id]
        info, job = await self._job(job_id)
        status = _STATUS.get(str(getattr(info.status, "value", info.status)), "failed")
        state = JobState(id=job_id, status=status, started_at=info.start_time / 1000 if info.start_time else None,
                         finished_at=info.end_time / 1000 if info.end_time else None)
        if status not in FINISHED:
            return state
        result = _result(await self._call("get_job_logs", job_id), job.nonce if job else None)
        if status == "cancelled" or result is None or result.get("status") not in FINISHED:
            result = {"exit_code": info.driver_exit_code,
                      "reason": "cancelled on request" if status == "cancelled" else info.message}
        state = JobState(**{**state.model_dump(), **result})
        if job is not None and job.blob_prefix:
            await asyncio.to_thread(self._pull_outputs, job)
        self._final[job_id] = state
        return state

    def _pull_outputs(self, job: RayJob) -> None:
        assert self.blobs is not None and job.blob_prefix is not None  # a job sent through the store
        for c in job.copies:
            if c.index >= 0 and job.spec.mounts[c.index].writable:
                transfer.pull(self.blobs, f"{job.blob_prefix}/out{c.index}", Path(job.spec.mounts[c.index].host),
                              c.kind)
        transfer.drop(self.blobs, job.blob_prefix)

    async def logs(self, job_id: str, tail_bytes: int | None = None) -> str:
        text = _clean(await self._call("get_job_logs", job_id))
        if tail_bytes is not None:
            text = text.encode()[-tail_bytes:].decode("utf-8", errors="replace")
        return text

    async def cancel(self, job_id: str) -> JobState:
        if not (await self.status(job_id)).finished:
            await self._call("stop_job", job_id)
        return await self.wait(job_id)

    async def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                state = await self.status(job_id)
            except KeyError:  # e.g. a head restarted without persistent state
                return JobState(id=job_id, status="failed", reason="the Ray cluster no longer knows this job")
            except ServiceError:  # the cluster is unreachable for now: keep following
                state = JobState(id=job_id, status="running")
            if state.finished or (deadline is not None and time.monotonic() >= deadline):
                return state
            await asyncio.sleep(self.poll_seconds)

    async def shutdown(self) -> None:
        """Nothing to stop: the jobs run on in the cluster, and a restarted server reattaches."""


def _clean(text: str) -> str:
    """The job's own output: Ray's header lines (up to 'Running entrypoint for job …') and
    the entrypoint's result line removed."""
    lines = text.split("\n")  # not splitlines(): the job's own line breaks stay as they are
    for i, line in enumerate(lines[:20]):
        if line.startswith("Running entrypoint for job "):
            lines = lines[i + 1:]
            break
    out = "\n".join(line for line in lines if not line.startswith(RESULT_MARK))
    return out[:-1] if out.endswith("\n\n") else out


def _result(text: str, nonce: str | None) -> dict | None:
    """The entrypoint's result (its last line bearing this job's nonce), or None."""
    if nonce is None:
        return None
    head = f"{RESULT_MARK} {nonce} "
    for line in reversed(text.split("\n")):
        if line.startswith(head):
            with contextlib.suppress(ValueError):
                raw = json.loads(line[len(head):])
                return {k: raw.get(k) for k in ("status", "exit_code", "reason")}
    return None
