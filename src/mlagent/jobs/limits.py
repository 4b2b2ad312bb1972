"""Resource limits for untrusted work (training jobs, serving workers), applied with setrlimit.

`preexec(limits)` runs in the child between fork and exec: it starts a new session (so a
cancel can kill the whole process group), makes the child die with the server
(PR_SET_PDEATHSIG) and lowers the child's limits. The wall clock is
enforced by the parent. The process limit is the job's own pids cgroup where the server can
make one (sandbox/cgroups.py); else `RLIMIT_NPROC`, which counts every process and thread
of the user, so `procs` is added to the number the user already runs."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable

from pydantic import BaseModel

from ..sandbox.cgroups import TaskBudget, task_budget
from ..sandbox.confine import die_with_parent

MB = 1024 * 1024
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE pin OpenBLAS's kernel where its detection is wrong for
# the processor: a worker without them computed with another kernel than the API process, so a
# model's exported spec never matched bit for bit there and every deployment fell back to its
# worker (serving/compiled.py `checked`). They name a CPU, nothing secret.
SAFE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


class Limits(BaseModel):
    cpu_seconds: int | None = 600
    memory_mb: int | None = 2048
    procs: int | None = 64
    file_size_mb: int | None = 1024
    open_files: int | None = 256
    wall_seconds: float | None = 900.0
    disk_mb: int | None = None  # writable directories may not grow past this (sandbox/disk.py)


def _user_process_count(uid: int | None = None) -> int:
    uid, count = os.getuid() if uid is None else uid, 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def _lower(which: int, value: int, grace: int = 0) -> None:
    """Soft limit `value`; hard limit `value + grace` (CPU: SIGXCPU first, SIGKILL after grace)."""
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
        resource.setrlimit(which, (value, min(hard, value + grace)))
    else:
        resource.setrlimit(which, (value, value + grace))


def budget(limits: Limits) -> TaskBudget | None:
    """The process's own process limit (None: none, or RLIMIT_NPROC set by `preexec`)."""
    return task_budget(limits.procs) if limits.procs is not None else None


def preexec(limits: Limits, uid: int | None = None, own: TaskBudget | None = None) -> Callable[[], None]:
    """`uid`: the user the code will run as (bwrap may drop to `nobody`), whose processes
    count when there is no `own` budget (`budget(limits)`)."""
    nproc = _user_process_count(uid) + limits.procs if limits.procs is not None and own is None else None

    def apply() -> None:  # runs in the child: only async-signal-safe-ish work
        os.setsid()
        die_with_parent(own)
        if limits.cpu_seconds is not None:
            _lower(resource.RLIMIT_CPU, int(limits.cpu_seconds), grace=2)
        if limits.memory_mb is not None:
            _lower(resource.RLIMIT_AS, int(limits.memory_mb) * MB)
        if nproc is not None:
            _lower(resource.RLIMIT_NPROC, nproc)
        if limits.file_size_mb is not None:
            _lower(resource.RLIMIT_FSIZE, int(limits.file_size_mb) * MB)
        if limits.open_files is not None:
            _lower(resource.RLIMIT_NOFILE, int(limits.open_files))
        _lower(resource.RLIMIT_CORE, 0)

    return apply


def scrubbed_env(home: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: none of the server's secrets (API keys, tokens, database URL).

    `ARROW_DEFAULT_MEMORY_POOL=system`: pandas imports pyarrow when it is installed (it is,
    for `datasets`), and Arrow's default pool reserves ~1 GiB of address space on first use,
    which under `RLIMIT_AS` 2 GiB left too little for shap's llvmlite (measured VmSize 1.8 →
    0.75 GiB after pandas + sklearn + shap with the system pool)."""
    env = {k: v for k, v in os.environ.items() if k in SAFE_ENV_KEYS}
    env.update({"HOME": home, "TMPDIR": home, "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "NUMBA_NUM_THREADS": "1", "MPLBACKEND": "Agg", "ARROW_DEFAULT_MEMORY_POOL": "system"})
    env.update(extra or {})
    return env
