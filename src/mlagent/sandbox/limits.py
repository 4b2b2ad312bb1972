"""Resource limits for one sandboxed command, and how they are applied (prlimit / setrlimit)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 120
    memory_mb: int = 2048
    max_processes: int = 64
    file_size_mb: int = 512
    wall_seconds: float = 300.0
    output_bytes: int = 64 * 1024
    disk_mb: int | None = 4096  # the session directory may not grow past this (sandbox/disk.py)

    def rlimits(self, extra_processes: int | None = 0) -> dict[int, int]:
        """setrlimit values; `extra_processes` accounts for tasks the uid already runs (None:
        no RLIMIT_NPROC, the process limit is the sandbox's own pids cgroup, cgroups.py)."""
        limits = {
            resource.RLIMIT_CPU: self.cpu_seconds,
            resource.RLIMIT_AS: self.memory_mb * 1024 * 1024,
            resource.RLIMIT_NPROC: self.max_processes + (extra_processes or 0),
            resource.RLIMIT_FSIZE: self.file_size_mb * 1024 * 1024,
            resource.RLIMIT_CORE: 0,
        }
        if extra_processes is None:
            del limits[resource.RLIMIT_NPROC]
        return limits

    def prlimit_args(self, extra_processes: int | None = 0) -> list[str]:
        names = {
            resource.RLIMIT_CPU: "--cpu",
            resource.RLIMIT_AS: "--as",
            resource.RLIMIT_NPROC: "--nproc",
            resource.RLIMIT_FSIZE: "--fsize",
            resource.RLIMIT_CORE: "--core",
        }
        return [f"{names[k]}={v}" for k, v in self.rlimits(extra_processes).items()]

    def setrlimit(self, extra_processes: int | None = 0) -> None:
        """Apply in a child before exec (the fallback when `prlimit` is missing)."""
        for key, value in self.rlimits(extra_processes).items():
            resource.setrlimit(key, (value, value))


def tasks_of_uid(uid: int) -> int:
    """How many tasks (threads count) `uid` runs now: RLIMIT_NPROC counts them all."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


def current_uid() -> int:
    return os.getuid()
