"""The `ray` job backend against the `local` one, for the same tiny training (the tests'
Ridge on the diabetes data, in the sandbox): submit → running and submit → finished,
median of several runs, at the job-backend level (no HTTP, no database).

    PYTHONPATH=src .venv/bin/python -m bench.ray_jobs [runs] [ray address]

Without an address it starts its own local Ray head on loopback (tests/ray_head.py) and
stops it afterwards; start-up of the head is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlagent.jobs import JobSpec, Limits, LocalBackend
from mlagent.jobs.limits import scrubbed_env
from mlagent.jobs.ray_backend import RayBackend
from mlagent.sandbox.confine import SANDBOX_MOUNT, Mount, isolation
from tests.mlconnector.client import TRAIN_SCRIPT
from tests.ray_head import ray_head
from tests.test_mlconnector_training import _diabetes_csv


def _spec(root: Path, n: int) -> JobSpec:
    base = root / f"job{n}"
    inputs, out, home = base / "input", base / "output", base / "home"
    for d in (inputs, out, home):
        d.mkdir(parents=True)
    (inputs / "train.py").write_bytes(TRAIN_SCRIPT)
    (inputs / "data.csv").write_bytes(_diabetes_csv())
    mode = isolation("auto", "bench jobs")
    boxed = mode == "bwrap"
    env = scrubbed_env(SANDBOX_MOUNT if boxed else str(home), {
        "MLAGENT_DATA_PATH": "/input/data.csv" if boxed else str(inputs / "data.csv"),
        "MLAGENT_OUTPUT_DIR": f"{SANDBOX_MOUNT}/output" if boxed else str(out)})
    return JobSpec(name=f"bench{n}", argv=[sys.executable, "-I", "-u", f"{'/input' if boxed else inputs}/train.py"],
                   workdir=home, env=env, isolation=mode, limits=Limits(),
                   mounts=[Mount(str(inputs), "/input"), Mount(str(out), f"{SANDBOX_MOUNT}/output", writable=True)])


async def _one(backend, spec: JobSpec) -> tuple[float, float]:
    start = time.perf_counter()
    job = await backend.submit(spec)
    running = None
    while True:
        state = await backend.status(job)
        if running is None and state.status != "queued":
            running = time.perf_counter() - start
        if state.finished:
            break
        await asyncio.sleep(0.02)
    assert state.status == "succeeded", (state, await backend.logs(job))
    assert (Path(spec.mounts[1].host) / "diabetes_ridge.pkl").exists()
    return running * 1000, (time.perf_counter() - start) * 1000


async def _bench(backends: dict, runs: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, list[float]]] = {name: {"running": [], "finished": []} for name in backends}
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for _ in range(runs):
            for name, backend in backends.items():  # interleaved: both see the same load
                n += 1
                running, finished = await _one(backend, _spec(Path(tmp), n))
                results[name]["running"].append(running)
                results[name]["finished"].append(finished)
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in results.items()}


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with contextlib.ExitStack() as stack:
        address = sys.argv[2] if len(sys.argv) > 2 else stack.enter_context(ray_head())
        with tempfile.TemporaryDirectory() as logs:
            backends = {"local": LocalBackend(Path(logs)), "ray": RayBackend(address, poll_seconds=0.02)}
            asyncio.run(_one(backends["ray"], _spec(Path(logs), 0)))  # warm-up: Ray's first job starts its workers
            medians = asyncio.run(_bench(backends, runs))
    for name, m in medians.items():
        print(f"{name:6} submit→running {m['running']:8.0f} ms   submit→finished {m['finished']:8.0f} ms")
    local, ray = medians["local"], medians["ray"]
    print(f"ray/local: running {ray['running'] / local['running']:.1f}x, finished "
          f"{ray['finished'] / local['finished']:.1f}x; overhead {ray['finished'] - local['finished']:.0f} ms per job")


if __name__ == "__main__":
    main()
