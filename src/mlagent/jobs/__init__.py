"""Job backends: run a command somewhere under limits; follow its status and logs; cancel it.

`base.JobBackend` is the small protocol every backend implements; `local.LocalBackend` runs
the job as a subprocess on this machine under `limits.Limits`; `ray_backend.RayBackend`
runs it as a Ray job on a cluster, under the same sandbox on the worker."""

from .base import JobBackend, JobSpec, JobState, JobStatus
from .limits import Limits
from .local import LocalBackend

__all__ = ["JobBackend", "JobSpec", "JobState", "JobStatus", "Limits", "LocalBackend", "make_backend"]


def make_backend(settings, root, blobs=None) -> JobBackend:
    """The backend `settings.job_backend` names; `root` is the local backend's log directory,
    `blobs` the store a Ray job's files travel through when `settings.ray_transfer` says so."""
    if settings.job_backend == "local":
        return LocalBackend(root)
    if settings.job_backend == "ray":
        import json

        from .ray_backend import RayBackend

        if not settings.ray_address:
            raise ValueError("MLAGENT_JOB_BACKEND=ray needs MLAGENT_RAY_ADDRESS (the Ray dashboard, e.g. "
                             "http://127.0.0.1:8265)")
        try:
            runtime_env = json.loads(settings.ray_runtime_env) if settings.ray_runtime_env else {}
        except ValueError as exc:
            raise ValueError(f"MLAGENT_RAY_RUNTIME_ENV is not valid JSON: {exc}") from None
        if not isinstance(runtime_env, dict):
            raise ValueError("MLAGENT_RAY_RUNTIME_ENV must be a JSON object")
        shared = settings.ray_transfer == "blobs" or (settings.ray_transfer == "auto" and settings.blob_url)
        if shared and not settings.blob_url:
            raise ValueError("MLAGENT_RAY_TRANSFER=blobs needs MLAGENT_BLOB_URL (a store the workers reach too)")
        return RayBackend(settings.ray_address, blobs=blobs if shared else None, blob_url=settings.blob_url,
                          s3_endpoint_url=settings.s3_endpoint_url, runtime_env=runtime_env,
                          python=settings.ray_python, cpus=settings.ray_job_cpus)
    raise ValueError(f"job backend {settings.job_backend!r} is not available (use 'local' or 'ray')")
