"""The local fine-tuning backend: one `python -m mlagent.finetune.train` run per job
(TRL's SFTTrainer on PyTorch's CPU), one at a time, on one thread.

The trainer is our code, but it parses a tenant's training data and loads an earlier
job's saved model, so it runs as a job of the job backend (`jobs/`: `local` on this
machine, or `ray`), started exactly as a `/mltraining` job is (jobs/local.py,
sandbox/confine.py): under bwrap it sees its spec, data and base model read-only at
/input, an empty home at /sandbox and its model directory at /sandbox/model, with no
network, as `nobody`, in its own pids cgroup, under the disk guard and the CPU, memory
and wall-clock limits; it dies with the server, and a restarted server kills what a
crashed one left (the job backend's `reap`, jobs/orphans.py) or, on Ray, follows it on.

It owns the job's status moves after `created` (queued → running → succeeded / failed /
cancelled) and records metrics as the trainer prints them. Each move is a conditional
update, so a cancel racing a finish ends in exactly one terminal status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from ..jobs import JobBackend, JobSpec, Limits
from ..jobs.limits import blas_env
from ..jobs.replica import heartbeat
from ..sandbox.confine import SANDBOX_MOUNT, SRC, Mount, isolation
from ..store.finetune import FineTuneStore
from ..store.records import FineTuningJobRecord
from .outputs import add_event
from .stored import FineTuneBlobs, job_key

log = logging.getLogger("mlagent.finetune")
# Address space, not resident memory. Measured VmPeak of a trainer with Arrow on the system
# allocator (below): 1.3 GiB for the test jobs, 2.0 GiB (1.1 GiB resident) for a 0.5 MB
# text file; with Arrow's own pool 2.4 / 3.0 GiB, so the old 2 GiB could not even import.
# 4 GiB leaves room for larger files while a runaway job cannot take the machine.
MEMORY_LIMIT_BYTES = 4 * 1024 ** 3
# One thread: the server shares the machine. One epoch of a 0.5 MB text on tiny-gpt2 took
# 24.5 s on one thread and 16.6 s on two on an idle 2-core box, but 33 s vs 126 s while
# other work ran (docs/agent-runtime-api.md): a second thread is a small win that can go badly.
TRAINER_THREADS = "1"
REMOTE_FILE = "remote-job"  # the job backend's id of the job's trainer, in the job's directory


def model_name(model_id: str, suffix: str | None, job_id: str) -> str:
    base = model_id.split(":")[1] if model_id.startswith("ft:") else model_id
    return f"ft:{base}:{suffix or 'custom'}:{job_id}"


class LocalBackend:
    def __init__(self, store: FineTuneStore, stored: FineTuneBlobs, jobs: JobBackend, concurrency: int = 1,
                 isolation: str = "auto", owner: str = "replica-local", lease_seconds: float = 30.0,
                 max_processes: int | None = 64, file_size_mb: int | None = None,
                 disk_mb: int | None = None) -> None:
        """`jobs`: the job backend the trainer runs on (the server's, as `/mltraining` jobs do);
        `max_processes`, `file_size_mb`, `disk_mb`: the trainer's limits, as a job's."""
        self.store = store
        self.stored = stored  # where the job's outputs go for other replicas (finetune/stored.py)
        self.isolation = isolation  # MLAGENT_SANDBOX_ISOLATION
        self.jobs = jobs
        self.owner = owner  # this replica's id (jobs/replica.py): its jobs' leases name it
        self.lease_seconds = lease_seconds
        self.max_processes, self.file_size_mb, self.disk_mb = max_processes, file_size_mb, disk_mb
        # Ray's jobs outlive the server and are followed on after a restart; the local backend's die with it.
        self._survives = getattr(jobs, "reattach", None) is not None
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task] = {}
        self._remote: dict[str, str] = {}  # our job id -> the job backend's
        self._heartbeat: asyncio.Task | None = None

    async def submit(self, job_id: str, training: str, validation: str | None, base_dir: str | None) -> None:
        if not await self.store.transition(job_id, ("created",), "queued", lease_owner=self.owner,
                                           lease_expires_at=time.time() + self.lease_seconds):
            return
        task = asyncio.create_task(self._run(job_id, training, validation, base_dir), name=f"finetune:{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))

    async def cancel(self, job_id: str) -> bool:
        moved = await self.store.transition(job_id, ("created", "queued", "running"), "cancelled")
        remote = self._remote.get(job_id)
        if remote is not None:
            with contextlib.suppress(KeyError):
                await self.jobs.cancel(remote)
        return moved

    async def recover(self, mine: bool = True) -> int:
        """Jobs left unfinished by a dead process fail, saying why: at start-up this
        replica's own (its previous run's) and those of replicas that stopped; later (the
        heartbeat) those whose replica's lease expired (store/leases.py)."""
        n = 0
        for job in await self.store.leases.lost(self.owner, mine):
            if job.id in self._tasks:
                continue
            if job.lease_owner not in (None, self.owner):  # it ran on another machine
                error = f"The replica running the job stopped (no heartbeat for {self.lease_seconds:g} s)."
            else:
                if await self._reattach(job):
                    continue
                left = self._reap(job)
                if left == "alive":  # another live server process on this data directory runs it
                    continue
                note = " Its trainer processes that were still running were stopped." if left == "killed" else ""
                error = "The server restarted before the job finished." + note
            if await self.store.leases.fail(job.id, self.owner, mine, error=error):
                n += 1
        return n

    def start(self) -> None:
        """The heartbeat: renew the leases of the jobs this replica runs, fail lost ones."""
        self._heartbeat = heartbeat(self.lease_seconds, self._beat, "fine-tuning heartbeat")

    async def _beat(self) -> None:
        await self.store.leases.renew(list(self._tasks), self.owner, self.lease_seconds)
        await self.recover(mine=False)

    def _reap(self, job: FineTuningJobRecord) -> str | None:
        """Kill what a dead server's trainer of `job` left running (the local job backend's
        `reap`, jobs/orphans.py): 'killed', 'gone', 'alive' (its server still runs) or None."""
        reap = getattr(self.jobs, "reap", None)
        remote_file = self.stored.local(job_key(job.id)) / REMOTE_FILE
        remote = remote_file.read_text().strip() if remote_file.is_file() else ""
        return reap(remote) if reap is not None and remote else None

    async def _reattach(self, job: FineTuningJobRecord) -> bool:
        """A job of this replica that ran on the job backend (Ray) and that the backend still
        knows is followed on, not failed: its trainer outlives the server."""
        out = self.stored.local(job_key(job.id))
        remote_file = out / REMOTE_FILE
        if not self._survives or job.status != "running" or not remote_file.is_file():
            return False
        reattach = getattr(self.jobs, "reattach", None)
        remote = remote_file.read_text().strip()
        if reattach is None or not remote or not await reattach(remote):
            return False
        await self.store.leases.renew([job.id], self.owner, self.lease_seconds)
        log.info("fine-tuning job %s: following its job %s again after the restart", job.id, remote)
        job_id = job.id
        task = asyncio.create_task(self._resume(self.jobs, job, out, remote), name=f"finetune:{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))
        return True

    async def shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if not self._survives:  # a local trainer stops with the server (a Ray one is followed on after)
            for job_id, remote in list(self._remote.items()):
                await self.store.transition(job_id, ("running",), "failed",
                                            error="The server stopped while the job was running.")
                with contextlib.suppress(KeyError):
                    await self.jobs.cancel(remote)
        for task in list(self._tasks.values()):
            task.cancel()

    async def _run(self, job_id: str, training: str, validation: str | None, base_dir: str | None) -> None:
        async with self._slots:
            job = await self.store.job(job_id)
            out = self.stored.local(job_key(job_id))
            if job is None or not await self.store.transition(job_id, ("queued",), "running", output_dir=job_key(job_id)):
                return
            cfg = job.compute_config
            out.mkdir(parents=True, exist_ok=True)
            add_event(out, "message", f"Training started on {job.model_id} (local CPU).")
            try:
                spec = await asyncio.to_thread(self._prepare, out, job.model_id, cfg, training, validation,
                                               base_dir)
                error = await self._train_on(self.jobs, job_id, out, spec)
            except Exception as exc:  # could not even start the trainer
                log.exception("fine-tuning job %s crashed", job_id)
                error = f"The trainer could not run: {type(exc).__name__}."
            await self._finish(job, out, error)

    async def _resume(self, jobs: JobBackend, job: FineTuningJobRecord, out: Path, remote: str) -> None:
        """Follow a trainer that kept running on the job backend (Ray) across a restart."""
        async with self._slots:
            add_event(out, "message", "The server restarted; following the job on the cluster again.")
            try:
                error = await self._follow_on(jobs, job.id, out, remote,
                                              float(job.compute_config["timeout_seconds"]))
            except Exception as exc:
                log.exception("fine-tuning job %s: following it after the restart failed", job.id)
                error = f"The job could not be followed after the restart: {type(exc).__name__}."
            await self._finish(job, out, error)

    async def _finish(self, job: FineTuningJobRecord, out: Path, error: str | None) -> None:
        """The model into the store (if it succeeded), the record's end, the notes into the store."""
        job_id = job.id
        if error is None:  # into the store before the job says succeeded: any replica then finds it
            try:
                await asyncio.to_thread(self.stored.put_model, job_id, out)
            except Exception as exc:
                log.exception("storing the model of fine-tuning job %s failed", job_id)
                error = f"The fine-tuned model could not be stored: {type(exc).__name__}."
        if error is None:
            name = model_name(job.model_id, job.suffix, job_id)
            if await self.store.transition(job_id, ("running",), "succeeded", fine_tuned_model=name):
                add_event(out, "message", f"The job succeeded: fine-tuned model {name}.")
        elif await self.store.transition(job_id, ("running",), "failed", error=error):
            add_event(out, "message", f"The job failed: {error}", level="error")
        try:
            await asyncio.to_thread(self.stored.put_notes, job_id, out)
        except Exception:
            log.exception("storing the log and events of fine-tuning job %s failed", job_id)

    def _prepare(self, out: Path, model_id: str, cfg: dict, training: str, validation: str | None,
                 base_dir: str | None) -> JobSpec:
        """The trainer's job (argv, environment, mounts; in the sandbox where it works). `out`
        holds the server's own files (spec, log); `out/home` and `out/model` are the trainer's."""
        mode = isolation(self.isolation, "the local fine-tuning trainer (tenant training data)")
        boxed = mode == "bwrap"
        home, model, inputs = out / "home", out / "model", out / "input"
        for d in (out, home, model, inputs):
            d.mkdir(parents=True, exist_ok=True)
        inside = {"training": "/input/training.jsonl", "validation": "/input/validation.jsonl",
                  "base": "/input/base", "spec": "/input/spec.json"}
        # Copies the trainer's user can read (uploads are the server's own, 0600).
        shutil.copyfile(training, inputs / "training.jsonl")
        mounts = [Mount(str(inputs / "training.jsonl"), inside["training"]),
                  Mount(str(model), f"{SANDBOX_MOUNT}/model", writable=True)]
        if validation:
            shutil.copyfile(validation, inputs / "validation.jsonl")
            mounts.append(Mount(str(inputs / "validation.jsonl"), inside["validation"]))
        if base_dir:
            mounts.append(Mount(str(Path(base_dir) / "model"), inside["base"]))
        spec = {"output_dir": f"{SANDBOX_MOUNT}/model" if boxed else str(model),
                "training_file": inside["training"] if boxed else training,
                "validation_file": (inside["validation"] if boxed else validation) if validation else None,
                "base_config": None if base_dir else model_id,
                "base_weights": (inside["base"] if boxed else str(Path(base_dir) / "model")) if base_dir else None,
                "epochs": cfg["epochs"], "learning_rate": cfg["learning_rate"], "batch_size": cfg["batch_size"]}
        (inputs / "spec.json").write_text(json.dumps(spec))
        for f in inputs.iterdir():
            f.chmod(0o644)
        mounts.append(Mount(str(inputs / "spec.json"), inside["spec"]))
        where = SANDBOX_MOUNT if boxed else str(home)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": where, "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": TRAINER_THREADS, "MKL_NUM_THREADS": TRAINER_THREADS, "HF_HOME": f"{where}/hf",
               "ARROW_DEFAULT_MEMORY_POOL": "system",  # Arrow's own pool reserves ~1 GiB of address space
               "PYTHONPATH": SRC, "TMPDIR": "/tmp" if boxed else where}
        env.update(blas_env())
        argv = [sys.executable, "-m", "mlagent.finetune.train", inside["spec"] if boxed else str(inputs / "spec.json")]
        timeout = int(cfg["timeout_seconds"])
        return JobSpec(name=out.name, argv=argv, workdir=home, env=env, isolation=mode, mounts=mounts,
                       with_source=True, limits=Limits(cpu_seconds=timeout + 5, memory_mb=MEMORY_LIMIT_BYTES >> 20,
                                                       procs=self.max_processes, file_size_mb=self.file_size_mb,
                                                       open_files=4096, wall_seconds=float(timeout),
                                                       disk_mb=self.disk_mb))

    async def _train_on(self, jobs: JobBackend, job_id: str, out: Path, spec: JobSpec) -> str | None:
        """The trainer as a job of `jobs`: its output (JSON events on stdout, mixed with its
        stderr) is read as it grows; the log is kept in `out/trainer.log` at the end."""
        remote = await jobs.submit(spec)
        (out / REMOTE_FILE).write_text(remote)  # a restarted server follows it on or reaps it (`recover`)
        self._remote[job_id] = remote
        job = await self.store.job(job_id)
        if job is None or job.status != "running":  # cancelled while it was being prepared
            with contextlib.suppress(KeyError):
                await jobs.cancel(remote)
        return await self._follow_on(jobs, job_id, out, remote, spec.limits.wall_seconds)

    async def _follow_on(self, jobs: JobBackend, job_id: str, out: Path, remote: str,
                         wall_seconds: float | None) -> str | None:
        """Read the trainer's output as it grows until it ends; its error, if any. Its complete
        lines are copied to `out/trainer.log` as they come (the job's live log, GET .../logs/)."""
        self._remote[job_id] = remote
        seen, last_error = 0, None
        live = out / "trainer.log"
        live.write_text("")
        try:
            while True:
                state = await jobs.wait(remote, timeout=1.0)
                text = await jobs.logs(remote)
                complete = text.rfind("\n") + 1 if not state.finished else len(text)
                for raw in text[seen:complete].splitlines():
                    last_error = await self._event(job_id, out, raw) or last_error
                if complete > seen:
                    with open(live, "a") as f:  # noqa: ASYNC230 - a small local append
                        f.write(text[seen:complete])
                seen = max(seen, complete)
                if state.finished:
                    break
        finally:
            self._remote.pop(job_id, None)
        (out / "trainer.log").write_text(text)
        if state.status == "succeeded":
            return None
        if state.reason and "wall clock limit" in state.reason:
            return f"The job exceeded its timeout of {wall_seconds:g} seconds."
        if state.reason and "disk limit" in state.reason:
            return f"The trainer was stopped: {state.reason} (its home and model directory)."
        if last_error:
            return last_error
        lines = [line for line in text.strip().splitlines() if not line.startswith("{")][-1:] or [""]
        return f"The trainer failed: {state.reason or state.status}. {lines[0][:300]}".strip()

    async def _event(self, job_id: str, out: Path, raw: str | bytes) -> str | None:
        """Record one line the trainer printed; an error message it reported, if that line was one."""
        try:
            msg = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(msg, dict):
            return None
        if msg.get("event") == "metrics":
            metrics = {k: float(v) for k, v in msg.items() if k != "event"}
            await self.store.set_metrics(job_id, metrics)
            add_event(out, "metrics", f"Step {int(metrics.get('step', 0))}: training loss "
                      f"{metrics.get('loss', float('nan')):.4f}", metrics)
        elif msg.get("event") == "error":
            return str(msg.get("message"))
        return None
