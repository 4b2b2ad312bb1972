"""The job-backend protocol: submit, status, logs, cancel, wait. Backends keep it narrow."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from ..sandbox.confine import Mount
from .limits import Limits

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class JobSpec(BaseModel):
    """What to run: `argv` in `workdir` with exactly `env`, under `limits`.

    `isolation` "bwrap" runs it in the sandbox (sandbox/confine.py): `workdir` read-write at
    /sandbox, `mounts` (its inputs) and nothing else of the host's files, no network unless
    `network`. "none" is the logged fallback: limits, `env` and `workdir` only."""

    name: str
    argv: list[str]
    workdir: Path
    env: dict[str, str] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    isolation: Literal["bwrap", "none"] = "bwrap"
    mounts: list[Mount] = Field(default_factory=list)
    network: bool = False
    with_source: bool = False  # bind this package's source read-only too (`python -m mlagent...`)


class JobState(BaseModel):
    id: str
    status: JobStatus
    exit_code: int | None = None
    reason: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobBackend(Protocol):
    name: str

    async def submit(self, spec: JobSpec) -> str: ...

    async def status(self, job_id: str) -> JobState: ...

    async def logs(self, job_id: str, tail_bytes: int | None = None) -> str: ...

    async def cancel(self, job_id: str) -> JobState: ...

    async def wait(self, job_id: str, timeout: float | None = None) -> JobState: ...
