"""Job backends: run a command somewhere under limits; follow its status and logs; cancel it.

`base.JobBackend` is the small protocol every backend implements; `local.LocalBackend` runs
the job as a subprocess on this machine under `limits.Limits`."""

from .base import JobBackend, JobSpec, JobState, JobStatus
from .limits import Limits
from .local import LocalBackend

__all__ = ["JobBackend", "JobSpec", "JobState", "JobStatus", "Limits", "LocalBackend", "make_backend"]


def make_backend(name: str, root) -> JobBackend:
    if name == "local":
        return LocalBackend(root)
    raise ValueError(f"job backend {name!r} is not available in this build (use 'local')")
