"""The local job backend: status, logs, limits (CPU, memory, file size, wall clock), cancel."""

from __future__ import annotations

import shutil
import sys

import pytest

from mlagent.jobs import JobSpec, Limits, LocalBackend
from mlagent.sandbox.confine import bwrap_works, isolation


def _spec(tmp_path, code: str, **limits) -> JobSpec:
    """A job in the sandbox where bwrap works here (the logged fallback otherwise)."""
    return JobSpec(name="t", argv=[sys.executable, "-u", "-c", code], workdir=tmp_path, env={"A": "1"},
                   limits=Limits(**limits), isolation=isolation("auto", "test jobs"))


async def test_success_logs_and_env(tmp_path):
    backend = LocalBackend(tmp_path / "logs")
    job = await backend.submit(_spec(tmp_path, "import os; print('hello', sorted(os.environ))"))
    state = await backend.wait(job)
    assert state.status == "succeeded" and state.exit_code == 0 and state.finished
    assert "hello" in await backend.logs(job) and "'A'" in await backend.logs(job)
    assert "MLAGENT" not in await backend.logs(job)


@pytest.mark.parametrize("code, limits, reason, log", [
    ("while True: pass", {"cpu_seconds": 1}, "CPU time limit exceeded", ""),
    ("import time; time.sleep(30)", {"wall_seconds": 0.5}, "wall clock limit", ""),
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the signal.
    ("open('big', 'wb').write(b'x' * 3 * 1024 * 1024)", {"file_size_mb": 1}, "exited with code 1", "File too large"),
    ("x = bytearray(1024 ** 3)", {"memory_mb": 300}, "exited with code 1", "MemoryError"),
    ("raise SystemExit(3)", {}, "exited with code 3", ""),
])
async def test_limits_end_jobs_with_a_reason(tmp_path, code, limits, reason, log):
    backend = LocalBackend(tmp_path / "logs")
    job = await backend.submit(_spec(tmp_path, code, **limits))
    state = await backend.wait(job)
    assert state.status == "failed" and reason in state.reason, state
    assert log in await backend.logs(job)


async def test_cancel_kills_the_process_group(tmp_path):
    backend = LocalBackend(tmp_path / "logs")
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(60)']); print('started', flush=True); time.sleep(60)")
    job = await backend.submit(_spec(tmp_path, code))
    import asyncio
    for _ in range(100):
        if "started" in await backend.logs(job):
            break
        await asyncio.sleep(0.05)
    state = await backend.cancel(job)
    assert state.status == "cancelled" and state.reason == "cancelled on request"
    assert (await backend.status(job)).status == "cancelled"


async def test_missing_program_fails_cleanly(tmp_path):
    backend = LocalBackend(tmp_path / "logs")
    spec = JobSpec(name="t", argv=["/nonexistent/program"], workdir=tmp_path, isolation="none")
    state = await backend.wait(await backend.submit(spec))
    assert state.status == "failed" and "could not start" in state.reason
    if not bwrap_works(shutil.which("bwrap")):
        return
    # In the sandbox the program is looked up inside it: the job starts, then fails saying why.
    boxed = await backend.submit(spec.model_copy(update={"isolation": "bwrap"}))
    state = await backend.wait(boxed)
    assert state.status == "failed" and state.exit_code != 0
    assert "/nonexistent/program" in await backend.logs(boxed)


def test_sandboxes_take_the_machines_blas_kernel_and_no_secret(monkeypatch):
    """A serving worker's compiled spec is checked bit for bit in the API process, so both must
    run the same OpenBLAS kernels: the machine's `OPENBLAS_CORETYPE` (set where OpenBLAS misdetects
    the CPU) reaches every sandbox; its thread count and the server's secrets do not."""
    from mlagent.jobs.limits import scrubbed_env

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    monkeypatch.setenv("MLAGENT_DATABASE_URL", "postgresql://secret")
    env = scrubbed_env("/home/x")
    assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["OPENBLAS_NUM_THREADS"] == "1"
    assert not any(k.startswith("MLAGENT") for k in env)
