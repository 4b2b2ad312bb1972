"""`/mltraining`: run a model's uploaded training script on its uploaded data as a job.

The job runs on the configured job backend (local: a subprocess under setrlimit limits and
a wall clock, in a scrubbed environment). The script's contract (docs/mlconnector.md): it
reads `MLAGENT_DATA_PATH`, writes one model file (.pkl/.joblib/.skops) into
`MLAGENT_OUTPUT_DIR`, optionally `metrics.json`; that model file becomes the model's next
version."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import shutil
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
from ..store.registry import RegistryStore
from ..store.registry_tables import TrainingRow
from .checks import MODEL_SUFFIXES, audit_skops, suffix_of
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
        self._watchers: set[asyncio.Task] = set()

    async def _view(self, row: TrainingRow) -> MLTrain:
        result = None
        if row.result_file_id:
            f = await self.store.get_file(row.result_file_id)
            result = file_schema(f) if f else None
        return MLTrain(id=row.id, modelid=row.model_id, placement=Placement.model_validate(row.placement),
                       backend=row.backend, job_id=row.job_id, status=row.status, reason=row.reason,
                       metrics=row.metrics, result_file=result, created_at=row.created_at, updated_at=row.updated_at)

    async def _row(self, account: str, training_id: str) -> TrainingRow:
        row = await self.store.get_training(account, training_id)
        if row is None:
            raise not_found("training", training_id, "training_id")
        return row

    async def add(self, account: str, body: MLTrainCreate) -> MLTrain:
        check_local(body.placement)
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
        row = TrainingRow(id=f"train-{uuid.uuid4().hex[:16]}", account=account, model_id=body.modelid,
                          placement=body.placement.model_dump(), backend=self.backend.name, job_id=None,
                          status="queued", reason=None, metrics={}, result_file_id=None, created_at=now,
                          updated_at=now)
        await self.store.add_training(row)
        workdir = self.root / row.id
        out = workdir / "output"
        out.mkdir(parents=True, exist_ok=True)
        script = workdir / code[0].filename
        data_path = workdir / data[0].filename
        await asyncio.to_thread(shutil.copyfile, code[1], script)
        await asyncio.to_thread(shutil.copyfile, data[1], data_path)
        env_extra = {"MLAGENT_DATA_PATH": str(data_path), "MLAGENT_OUTPUT_DIR": str(out),
                     "MLAGENT_MODEL_ID": body.modelid,
                     "MLAGENT_HYPERPARAMETERS": json.dumps({h.parameter: h.value for h in model.hyperparameter}),
                     "MLAGENT_FEATURES": json.dumps(model.feature_names()[0]),
                     "MLAGENT_TARGETS": json.dumps(model.feature_names()[1])}
        spec = JobSpec(name=row.id, argv=[sys.executable, "-I", "-u", script.name], workdir=workdir,
                       env=scrubbed_env(str(workdir), env_extra),
                       limits=Limits(cpu_seconds=self.settings.job_cpu_seconds, memory_mb=self.settings.job_memory_mb,
                                     procs=64, file_size_mb=1024, open_files=256,
                                     wall_seconds=self.settings.job_wall_seconds))
        job_id = await self.backend.submit(spec)
        await self.store.update_training(row.id, job_id=job_id, status="running")
        task = asyncio.create_task(self._follow(row.id, body.modelid, job_id, out), name=f"follow-{row.id}")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        return await self.get(account, row.id)

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
        produced = sorted(p for p in out.iterdir() if p.is_file() and suffix_of(p.name) in MODEL_SUFFIXES)
        if not produced:
            await self.store.update_training(training_id, status="failed", reason="the script wrote no model file "
                                             "(.pkl/.joblib/.skops) into MLAGENT_OUTPUT_DIR")
            return
        try:
            if suffix_of(produced[0].name) == ".skops":
                await asyncio.to_thread(audit_skops, produced[0])
            new = await self.registry.add_trained_file(model_id, produced[0], produced[0].name)
        except ServiceError as exc:
            await self.store.update_training(training_id, status="failed", reason=exc.message)
            return
        await self.store.update_training(training_id, status="succeeded", result_file_id=new.id,
                                         metrics=_metrics(out / "metrics.json"))

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
        """Local jobs do not survive the server: mark the ones a previous process left as failed."""
        for row in await self.store.unfinished_trainings():
            await self.store.update_training(row.id, status="failed", reason="the server restarted during the job")

    async def shutdown(self) -> None:
        for task in list(self._watchers):
            task.cancel()
        shutdown = getattr(self.backend, "shutdown", None)
        if shutdown is not None:
            await shutdown()


def _log_key(training_id: str) -> str:
    return f"jobs/{training_id}/train.log"


def _metrics(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
