"""`/mltraining`: run a model's uploaded training script on its uploaded data as a job.

The script is as untrusted as the agent's sandbox code, so it runs the same way
(sandbox/confine.py, docs/security.md): on the local job backend inside bwrap, as its own
user, with no network, the system read-only, a clean environment, limits and a wall clock,
seeing only an empty directory of its own (/sandbox), its two inputs read-only (/input)
and its output directory; the logged fallback without bwrap keeps the limits and the clean
environment. The script's contract (docs/mlconnector.md): it reads `MLAGENT_DATA_PATH`,
writes one model file (.pkl/.joblib/.skops) into `MLAGENT_OUTPUT_DIR`, optionally
`metrics.json`; that model file becomes the model's next version. What the job wrote is
read without following any link it may have planted (sandbox/paths.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import stat
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ..blobs import BlobNotFound
from ..config import Settings
from ..errors import ServiceError, not_found
from ..jobs.base import JobBackend, JobSpec
from ..jobs.limits import Limits, scrubbed_env
from ..jobs.placement import Placement, check_local
from ..jobs.replica import heartbeat, replica_id
from ..sandbox.confine import SANDBOX_MOUNT, IsolationError, Mount, isolation
from ..sandbox.paths import open_beneath
from ..store.records import TrainingRecord
from ..store.registry import RegistryStore
from .checks import MODEL_SUFFIXES, audit_archive, audit_skops, suffix_of
from .schemas import MLTrain, MLTrainCreate
from .service import RegistryService, file_schema

log = logging.getLogger("mlagent.training")


class TrainingService:
    def __init__(self, settings: Settings, store: RegistryStore, registry: RegistryService,
                 backend: JobBackend) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.backend = backend
        self.root = settings.data_dir / "jobs"
        self._watchers: dict[str, asyncio.Task] = {}  # training id → the task following its job
        self.owner = replica_id(settings.data_dir, settings.replica_id)
        self.leases = store.training_leases
        self._heartbeat: asyncio.Task | None = None

    async def _view(self, row: TrainingRecord) -> MLTrain:
        result = None
        if row.result_file_id:
            f = await self.store.get_file(row.result_file_id)
            result = file_schema(f) if f else None
        return MLTrain(id=row.id, modelid=row.model_id, placement=Placement.model_validate(row.placement),
                       backend=row.backend, job_id=row.job_id, status=row.status, reason=row.reason,
                       metrics=row.metrics, result_file=result, created_at=row.created_at, updated_at=row.updated_at)

    async def _row(self, account: str, training_id: str) -> TrainingRecord:
        row = await self.store.get_training(account, training_id)
        if row is None:
            raise not_found("training", training_id, "training_id")
        return row

    async def add(self, account: str, body: MLTrainCreate) -> MLTrain:
        getattr(self.backend, "check_placement", check_local)(body.placement)
        try:  # probed once; refuse here, before any record, when the sandbox is required but missing
            await asyncio.to_thread(isolation, self.settings.sandbox_isolation, "/mltraining jobs (uploaded code)")
        except IsolationError as exc:
            raise ServiceError(503, "sandbox_unavailable", f"Training jobs cannot run here: {exc}.", None) from None
        if await self.store.get_model(account, body.modelid) is None:
            raise not_found("model", body.modelid, "modelid")
        code = await self.registry.latest(account, body.modelid, "code")
        data = await self.registry.latest(account, body.modelid, "data")
        for kind, found in (("code", code), ("data", data)):
            if found is None:
                raise ServiceError(422, "training_input_missing", f"Model {body.modelid!r} has no {kind} file: "
                                   f"upload one with file_kind={kind} first.", "modelid", retryable=False)
        model = await self.registry.get(account, body.modelid)
        now = time.time()
        row = TrainingRecord(id=f"train-{uuid.uuid4().hex[:16]}", account=account, model_id=body.modelid,
                             placement=body.placement.model_dump(), backend=self.backend.name, job_id=None,
                             status="queued", reason=None, metrics={}, result_file_id=None, created_at=now,
                             updated_at=now, lease_owner=self.owner,
                             lease_expires_at=now + self.settings.lease_seconds)
        await self.store.add_training(row)
        spec, _out = await asyncio.to_thread(self._prepare, row.id, body.modelid, model, code, data)
        try:
            job_id = await self.backend.submit(spec)
        except ServiceError as exc:  # e.g. the Ray cluster is unreachable
            await self.store.update_training(row.id, status="failed", reason=exc.message)
            raise
        await self.store.update_training(row.id, job_id=job_id, status="running")
        self._watch(row.id, body.modelid, job_id)
        return await self.get(account, row.id)

    def _watch(self, training_id: str, model_id: str, job_id: str) -> None:
        task = asyncio.create_task(self._follow(training_id, model_id, job_id, self.root / training_id / "output"),
                                   name=f"follow-{training_id}")
        self._watchers[training_id] = task
        task.add_done_callback(lambda _t: self._watchers.pop(training_id, None))

    def _prepare(self, training_id: str, model_id: str, model, code, data) -> tuple[JobSpec, Path]:
        """The job's directories and spec: jobs/<id>/input (its two files, read-only at
        /input), output (read-write at /sandbox/output) and an empty home (/sandbox)."""
        mode = isolation(self.settings.sandbox_isolation, "/mltraining jobs (uploaded code)")
        base = self.root / training_id
        inputs, out, home = base / "input", base / "output", base / "home"
        for d in (inputs, out, home):
            d.mkdir(parents=True, exist_ok=True)
        base.chmod(0o700)
        inputs.chmod(0o755)  # readable by the job's own user; it only ever sees this dir and below
        script_name = _plain_name(code[0].filename, "train.py")
        data_name = _plain_name(data[0].filename, "data.csv")
        if data_name == script_name:
            data_name = f"data-{data_name}"
        for src, name in ((code[1], script_name), (data[1], data_name)):
            shutil.copyfile(src, inputs / name)
            (inputs / name).chmod(0o644)
        boxed = mode == "bwrap"
        in_dir = "/input" if boxed else str(inputs)
        out_dir = f"{SANDBOX_MOUNT}/output" if boxed else str(out)
        env_extra = {"MLAGENT_DATA_PATH": f"{in_dir}/{data_name}", "MLAGENT_OUTPUT_DIR": out_dir,
                     "MLAGENT_MODEL_ID": model_id,
                     "MLAGENT_HYPERPARAMETERS": json.dumps({h.parameter: h.value for h in model.hyperparameter}),
                     "MLAGENT_FEATURES": json.dumps(model.feature_names()[0]),
                     "MLAGENT_TARGETS": json.dumps(model.feature_names()[1])}
        env = scrubbed_env(SANDBOX_MOUNT if boxed else str(home), env_extra)
        if boxed:
            env["TMPDIR"] = "/tmp"  # bwrap's private tmpfs
        spec = JobSpec(name=training_id, argv=[sys.executable, "-I", "-u", f"{in_dir}/{script_name}"], workdir=home,
                       env=env, isolation=mode,
                       mounts=[Mount(str(inputs), "/input"), Mount(str(out), f"{SANDBOX_MOUNT}/output", writable=True)],
                       limits=Limits(cpu_seconds=self.settings.job_cpu_seconds, memory_mb=self.settings.job_memory_mb,
                                     procs=self.settings.job_max_processes, file_size_mb=self.settings.job_file_size_mb,
                                     open_files=256, wall_seconds=self.settings.job_wall_seconds,
                                     disk_mb=self.settings.sandbox_disk_mb))
        return spec, out

    async def _follow(self, training_id: str, model_id: str, job_id: str, out: Path) -> None:
        state = await self.backend.wait(job_id)
        logs = await self.backend.logs(job_id)
        (out.parent / "train.log").write_text(logs)
        await self._share_log(training_id, out.parent / "train.log")
        if state.status != "succeeded":
            tail = logs.strip().splitlines()[-1:] if logs.strip() else []
            reason = state.reason or state.status
            if tail and state.status == "failed":
                reason += f": {tail[0][:500]}"
            await self.store.update_training(training_id, status=state.status, reason=reason)
            return
        try:
            produced = await asyncio.to_thread(_take_model, out, out.parent / "result")
        except OSError as exc:
            produced = None
            log.warning("training %s: reading its output failed: %s", training_id, exc)
        if produced is None:
            await self.store.update_training(training_id, status="failed", reason="the script wrote no model file "
                                             "(.pkl/.joblib/.skops) into MLAGENT_OUTPUT_DIR")
            return
        try:
            if suffix_of(produced.name) == ".skops":
                await asyncio.to_thread(audit_skops, produced)
            elif suffix_of(produced.name) == ".tar.gz":
                await asyncio.to_thread(audit_archive, produced)
            new = await self.registry.add_trained_file(model_id, produced, produced.name)
        except ServiceError as exc:
            await self.store.update_training(training_id, status="failed", reason=exc.message)
            return
        await self.store.update_training(training_id, status="succeeded", result_file_id=new.id,
                                         metrics=_metrics(out))

    async def _share_log(self, training_id: str, path: Path) -> None:
        """A finished job's log goes to the blob store too, so any replica can serve it (the
        default local store's key is this very file: nothing to copy)."""
        blobs = self.registry.artifacts.blobs
        if blobs.local_path(_log_key(training_id)) == path.resolve():
            return
        try:
            await asyncio.to_thread(blobs.put_file, _log_key(training_id), path)
        except Exception:
            log.exception("storing the log of training %s in the blob store failed", training_id)

    async def get(self, account: str, training_id: str) -> MLTrain:
        return await self._view(await self._row(account, training_id))

    async def list(self, account: str, skip: int, limit: int) -> list[MLTrain]:
        return [await self._view(r) for r in await self.store.list_trainings(account, skip, limit)]

    async def logs(self, account: str, training_id: str) -> str:
        row = await self._row(account, training_id)
        saved = self.root / row.id / "train.log"
        if saved.exists():
            return saved.read_text(errors="replace")
        if row.status not in ("queued", "running"):  # finished on another replica: its copy in the blob store
            with contextlib.suppress(BlobNotFound):
                data = await asyncio.to_thread(self.registry.artifacts.blobs.get_bytes, _log_key(row.id))
                return data.decode(errors="replace")
        with contextlib.suppress(KeyError):
            return await self.backend.logs(row.job_id) if row.job_id else ""
        return ""

    async def cancel(self, account: str, training_id: str) -> MLTrain:
        row = await self._row(account, training_id)
        if row.status in ("queued", "running") and row.job_id:
            with contextlib.suppress(KeyError):
                await self.backend.cancel(row.job_id)
            for _ in range(100):
                if (await self._row(account, training_id)).status not in ("queued", "running"):
                    break
                await asyncio.sleep(0.05)
        return await self.get(account, training_id)

    async def recover(self) -> None:
        """At start-up: fail the jobs this replica's previous run left (local jobs do not
        survive their server: stop what is left of them, guarded against pid reuse) and those
        of replicas that stopped; jobs other live replicas run are theirs (store/leases.py).
        A backend whose jobs outlive the server (Ray) `reattach`es this replica's own: the
        job is followed on."""
        await self._fail_lost(mine=True)

    def start(self) -> None:
        """The heartbeat: renew this replica's job leases, and fail the jobs of a replica
        whose leases expired (it stopped, or lost the database, for a whole lease)."""
        self._heartbeat = heartbeat(self.settings.lease_seconds, self._beat, "training heartbeat")

    async def _beat(self) -> None:
        await self.leases.renew(list(self._watchers), self.owner, self.settings.lease_seconds)
        await self._fail_lost(mine=False)

    async def _fail_lost(self, mine: bool) -> None:
        reap = getattr(self.backend, "reap", None)
        reattach = getattr(self.backend, "reattach", None)
        for row in await self.leases.lost(self.owner, mine):
            if row.id in self._watchers:
                continue
            ours = row.lease_owner in (None, self.owner)
            if ours and reattach is not None and row.job_id and row.backend == self.backend.name \
                    and await reattach(row.job_id):
                # Its paths are this replica's (the job's inputs and outputs); renewing the lease
                # at once keeps another replica's sweep from failing it meanwhile.
                await self.leases.renew([row.id], self.owner, self.settings.lease_seconds)
                log.info("training %s: following its job %s again after the restart", row.id, row.job_id)
                self._watch(row.id, row.model_id, row.job_id)
                continue
            if not ours:  # its job ran on another machine
                reason = "the replica running the job stopped (no heartbeat for " \
                         f"{self.settings.lease_seconds:g} s)"
                if reattach is not None and row.job_id and row.backend == self.backend.name:
                    # A Ray job outlives its replica, but its inputs and outputs are that
                    # replica's: stop it rather than leave it running unowned.
                    with contextlib.suppress(Exception):
                        await self.backend.cancel(row.job_id)
                    reason += "; its Ray job was stopped"
            else:
                outcome = reap(row.job_id) if reap is not None and row.job_id else None
                if outcome == "alive":  # another live server process on this data directory runs it
                    continue
                reason = "the server restarted during the job"
                if outcome == "killed":
                    reason += "; the job's processes that were still running were stopped"
                elif outcome == "gone":
                    reason += "; the job's process had already ended with the server"
            if await self.leases.fail(row.id, self.owner, mine, reason=reason):
                log.warning("training %s: %s", row.id, reason)

    async def shutdown(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for task in list(self._watchers.values()):
            task.cancel()
        shutdown = getattr(self.backend, "shutdown", None)
        if shutdown is not None:
            await shutdown()


def _log_key(training_id: str) -> str:
    return f"jobs/{training_id}/train.log"


def _plain_name(name: str, default: str) -> str:
    base = os.path.basename(name or "").strip()
    return base if base and base not in (".", "..") and "\0" not in base else default


def _take_model(out: Path, result: Path) -> Path | None:
    """Copy the first model file (by name) the job wrote at the top of `out` into `result`
    (the server's own directory), following no link and taking no special file; None if none."""
    result.mkdir(exist_ok=True)
    dir_fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for name in sorted(n for n in os.listdir(dir_fd) if suffix_of(n) in MODEL_SUFFIXES):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:  # a symlink, or gone
                continue
            with os.fdopen(fd, "rb") as src:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                    continue
                with open(result / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                return result / name
        return None
    finally:
        os.close(dir_fd)


def _metrics(out: Path) -> dict[str, Any]:
    try:
        fd = open_beneath(out, "metrics.json", os.O_RDONLY | os.O_NONBLOCK)
    except (OSError, ValueError):
        return {}
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return {}
        try:
            raw = json.loads(f.read(1 << 20))
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
