"""Deployments: create (start a serving worker), status, list, stop; predict and explain.

A deployment goes pending -> running once its worker has loaded the model, or -> failed with
the reason; DELETE stops it (status `stopped`, kept for its operations log). Workers are
per API process: one that has none for a running deployment (after a restart, or another
replica) starts one on the first call.

This service is built at start, but NumPy and the modules that use it (inputs, compiled,
specshap) are imported where first used, so start-up does not pay for them; the server's
warm-up thread imports them once it listens (server.WARM_IMPORTS)."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from ..config import Settings
from ..errors import ServiceError, not_found
from ..jobs.limits import Limits
from ..jobs.placement import check_local
from ..registry.checks import audit_skops, suffix_of
from ..registry.service import RegistryService
from ..store.protocols import DuplicateError, ModelRegistry
from ..store.records import DeploymentRecord
from .generation import parse_prompts
from .operations import OperationRecorder
from .pool import Worker, WorkerError, WorkerInfo, WorkerInit, start_worker
from .schemas import MLDeploymentCreate, MLDeploymentReturn, ModelInfo, Placement, PredictRequest, PredictResponse

if TYPE_CHECKING:
    import numpy as np

    from .compiled import Predict
    from .specshap import LinearShap, TreeShap

ROW_TTL = 2.0
# A compiled prediction costing more vectorised steps (rows x compiled.work) runs in a
# thread, off the event loop: 64 rows of a 100-tree depth-30 forest still run inline.
INLINE_WORK = 200_000
EXPLAIN_COST = 16  # Tree SHAP's cost per (row, tree, level) against a prediction's, roughly


class DeploymentService:
    def __init__(self, settings: Settings, store: ModelRegistry, registry: RegistryService,
                 recorder: OperationRecorder) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.recorder = recorder
        self.root = settings.data_dir / "serving"
        self._workers: dict[int, Worker] = {}
        self._starting: dict[int, asyncio.Task] = {}
        # Predict's hot path: (account, deployment id) -> (row, when read). Re-read after ROW_TTL
        # so a stop by another replica is seen within that time; this process's stops evict at once.
        self._rows: dict[tuple[str, str], tuple[DeploymentRecord, float]] = {}
        self._refreshing: dict[tuple[str, str], asyncio.Task] = {}
        self.limits = Limits(cpu_seconds=None, memory_mb=settings.serving_memory_mb, procs=64, file_size_mb=64,
                             open_files=256, wall_seconds=None, disk_mb=settings.sandbox_disk_mb)
        registry.in_use = self.active_for_model

    # -- views ----------------------------------------------------------------------------------
    def _view(self, row: DeploymentRecord, base_url: str) -> MLDeploymentReturn:
        worker = self._workers.get(row.pk)
        info = ModelInfo(**worker.info.model_dump()) if worker and worker.alive else None
        return MLDeploymentReturn(
            deployment_id=row.deployment_id, modelid=row.model_id, model_file_id=row.file_id, ownerid=row.ownerid,
            placement=Placement.model_validate(row.placement), inference_data=row.inference_data, status=row.status,
            reason=row.reason, endpoint=f"{base_url.rstrip('/')}/deployment/{row.deployment_id}/predict", model=info,
            created_at=row.created_at, updated_at=row.updated_at)

    async def _row(self, account: str, deployment_id: str) -> DeploymentRecord:
        row = await self.store.get_deployment(account, deployment_id)
        if row is None:
            raise not_found("deployment", deployment_id, "deployment_id")
        return row

    async def active_for_model(self, account: str, model_id: str) -> list[str]:
        return [r.deployment_id for r in await self.store.active_deployments(account, model_id)]

    # -- lifecycle ------------------------------------------------------------------------------
    async def create(self, account: str, body: MLDeploymentCreate, base_url: str) -> MLDeploymentReturn:
        check_local(body.placement)
        model = await self.registry.store.get_model(account, body.modelid)
        if model is None:
            raise not_found("model", body.modelid, "modelid")
        latest = await self.registry.latest(account, body.modelid, "model")
        if latest is None:
            raise ServiceError(422, "model_file_missing", f"Model {body.modelid!r} has no model file: upload one "
                               "with file_kind=model first.", "modelid", retryable=False)
        deployment_id = body.deployment_id or f"dep-{uuid.uuid4().hex[:12]}"
        try:
            row = await self.store.add_deployment(
                account=account, deployment_id=deployment_id, model_id=body.modelid, file_id=latest[0].id,
                ownerid=body.ownerid or account, placement=body.placement.model_dump(),
                inference_data=body.inference_data)
        except DuplicateError:
            raise ServiceError(409, "deployment_exists", f"A deployment with id {deployment_id!r} already "
                               "exists.", "deployment_id", retryable=False) from None
        self._launch(row)
        return self._view(row, base_url)

    def _launch(self, row: DeploymentRecord) -> asyncio.Task:
        task = self._starting.get(row.pk)
        if task is None or task.done():
            task = asyncio.create_task(self._start(row), name=f"deploy-{row.pk}")
            self._starting[row.pk] = task
        return task

    async def _init_for(self, row: DeploymentRecord) -> WorkerInit:
        model = await self.registry.get(row.account, row.model_id)
        file = next((f for f in model.files if f.id == row.file_id), None)
        if file is None:
            raise WorkerError("the deployed model file no longer exists", 409)
        path = await self.registry.artifacts.fetch(file.sha256)
        suffix = suffix_of(file.filename)
        fmt = {".skops": "skops", ".joblib": "joblib", ".tar.gz": "transformers"}.get(suffix, "pickle")
        trusted = await asyncio.to_thread(audit_skops, path) if fmt == "skops" else []
        data = await self.registry.latest(row.account, row.model_id, "data")
        inputs, targets = model.feature_names()
        return WorkerInit(model_path=str(path), model_format=fmt, trusted_types=trusted,
                          data_path=str(data[1]) if data else None, inputs=inputs, targets=targets)

    async def _start(self, row: DeploymentRecord) -> Worker | None:
        try:
            init = await self._init_for(row)
            limits = self.limits if init.model_format != "transformers" else self.limits.model_copy(
                update={"memory_mb": max(self.limits.memory_mb or 0, self.settings.serving_generate_memory_mb)})
            worker = await start_worker(init, self.root / str(row.pk), limits,
                                        self.settings.serving_start_timeout_seconds, self.settings.sandbox_isolation)
        except (WorkerError, ServiceError) as exc:
            await self.store.set_deployment_status(row.pk, "failed", exc.message, only_from=("pending", "running"))
            return None
        if not await self.store.set_deployment_status(row.pk, "running", None, only_from=("pending", "running")):
            await worker.stop()  # deleted while it was starting
            return None
        old = self._workers.pop(row.pk, None)
        if old:
            await old.stop()
        self._workers[row.pk] = worker
        return worker

    async def _worker(self, row: DeploymentRecord) -> Worker:
        if row.status in ("failed", "stopped"):
            raise ServiceError(409, "deployment_not_running", f"Deployment {row.deployment_id!r} is {row.status}"
                               + (f": {row.reason}" if row.reason else "."), "deployment_id", retryable=False)
        worker = self._workers.get(row.pk)
        if worker is not None and worker.alive:
            return worker
        worker = await self._launch(row)
        if worker is None:
            self._rows.pop((row.account, row.deployment_id), None)
            fresh = await self.store.get_deployment(row.account, row.deployment_id)
            reason = fresh.reason if fresh else "deleted"
            raise ServiceError(409, "deployment_not_running",
                               f"Deployment {row.deployment_id!r} could not start: {reason}", "deployment_id",
                               retryable=False)
        return worker

    async def get(self, account: str, deployment_id: str, base_url: str) -> MLDeploymentReturn:
        return self._view(await self._row(account, deployment_id), base_url)

    async def list(self, account: str, skip: int, limit: int, base_url: str) -> list[MLDeploymentReturn]:
        return [self._view(r, base_url) for r in await self.store.list_deployments(account, skip, limit)]

    async def delete(self, account: str, deployment_id: str, base_url: str) -> MLDeploymentReturn:
        row = await self._row(account, deployment_id)
        if row.status in ("pending", "running"):
            await self.store.set_deployment_status(row.pk, "stopped", "deleted by its owner")
        refresh = self._refreshing.get((account, deployment_id))
        if refresh is not None:
            await asyncio.wait([refresh])  # one that read the row before the stop would cache it
        self._rows.pop((account, deployment_id), None)
        task = self._starting.pop(row.pk, None)
        if task is not None and not task.done():
            await asyncio.wait([task], timeout=self.settings.serving_start_timeout_seconds)
        worker = self._workers.pop(row.pk, None)
        if worker is not None:
            await worker.stop()
        return self._view(await self._row(account, deployment_id), base_url)

    async def resume(self) -> None:
        """After a restart: start the workers of deployments left pending."""
        for row in await self.store.active_deployments():
            if row.status == "pending":
                self._launch(row)

    async def shutdown(self) -> None:
        for task in self._starting.values():
            task.cancel()
        for worker in list(self._workers.values()):
            await worker.stop()
        self._workers.clear()

    # -- predict --------------------------------------------------------------------------------
    async def _cached_row(self, account: str, deployment_id: str) -> DeploymentRecord:
        """A running deployment's row, re-read in the background once it is ROW_TTL old: predicts
        never wait on the database for it (on SQLite they would queue behind the operations
        log's inserts on its one connection), so a stop elsewhere is seen within ROW_TTL plus
        one read."""
        key = (account, deployment_id)
        hit = self._rows.get(key)
        if hit is None:
            return await self._refresh_row(key)
        if time.monotonic() - hit[1] >= ROW_TTL and key not in self._refreshing:
            self._refreshing[key] = asyncio.create_task(self._refresh_quietly(key))
        return hit[0]

    async def _refresh_quietly(self, key: tuple[str, str]) -> None:
        with contextlib.suppress(Exception):  # gone: the next predict reads it and says so
            await self._refresh_row(key)

    async def _refresh_row(self, key: tuple[str, str]) -> DeploymentRecord:
        now = time.monotonic()
        try:
            row = await self._row(*key)
        except ServiceError:
            self._rows.pop(key, None)
            raise
        finally:
            self._refreshing.pop(key, None)
        if row.status == "running":
            self._rows[key] = (row, now)
        else:
            self._rows.pop(key, None)
        return row

    async def predict(self, account: str, deployment_id: str, body: PredictRequest) -> PredictResponse:
        return PredictResponse.model_validate_json(await self.predict_json(account, deployment_id, body.data,
                                                                           body.explain))

    async def predict_json(self, account: str, deployment_id: str, data: Any, explain: bool) -> bytes:
        """Predict (and explain) in the deployment's worker; returns the response JSON, also logged."""
        row = await self._cached_row(account, deployment_id)
        worker = await self._worker(row)
        info = worker.info
        if info.task == "text-generation":
            return await self._generate(account, row, worker, data, explain)
        from .inputs import parse_rows  # NumPy: not at start (the module docstring)

        x, batch = parse_rows(data, info.feature_names, info.n_features, self.settings.max_predict_rows)
        if worker.fast is not None:
            shap = await worker.spec_shap() if explain else None
            if shap is not None or not explain:
                payload = await self._predict_here(worker.fast, x, worker.fast_work, shap, batch, info)
                await self._record(account, row, x, payload)
                return payload
        try:
            reply = await worker.call({"op": "predict", "rows": x.tolist(), "explain": explain},
                                      self.settings.predict_timeout_seconds)
        except WorkerError as exc:
            self._workers.pop(row.pk, None)
            raise ServiceError(exc.status, "serving_error", f"Prediction failed: {exc.message}", None) from None
        if not reply.get("ok"):
            raise ServiceError(int(reply.get("status", 422)), "prediction_failed", str(reply.get("error")),
                               "data", retryable=False)
        result: dict[str, Any] = {"prediction": reply["prediction"]}
        if explain:
            result["explanation"] = _explanation(reply["explanation"], batch, info.feature_names)
        payload = _json(result)
        await self._record(account, row, x, payload)
        return payload

    async def _generate(self, account: str, row: DeploymentRecord, worker: Worker, data: Any, explain: bool) -> bytes:
        """A text-generation deployment: the prompts' continuations, generated in its worker."""
        if explain:
            raise ServiceError(422, "explain_unsupported", "Explanations (SHAP) are for tabular models; this "
                               "deployment generates text.", "explain", retryable=False)
        prompts, max_new = parse_prompts(data)
        try:
            reply = await worker.call({"op": "generate", "prompts": prompts, "max_new_tokens": max_new},
                                      self.settings.predict_timeout_seconds)
        except WorkerError as exc:
            self._workers.pop(row.pk, None)
            raise ServiceError(exc.status, "serving_error", f"Generation failed: {exc.message}", None) from None
        if not reply.get("ok"):
            raise ServiceError(int(reply.get("status", 422)), "prediction_failed", str(reply.get("error")),
                               "data", retryable=False)
        payload = _json({"prediction": reply["prediction"]})
        await self._record(account, row, prompts, payload)
        return payload

    async def _predict_here(self, fast: Predict, x: np.ndarray, work: int, shap: TreeShap | LinearShap | None,
                            batch: bool, info: WorkerInfo) -> bytes:
        """A compiled model's prediction in this process (NumPy on the worker's checked spec), and
        with `shap` its SHAP explanation (specshap.py)."""
        inline = len(x) * work * (EXPLAIN_COST if shap else 1) <= INLINE_WORK
        try:
            result = _answer(fast, shap, x) if inline else await asyncio.to_thread(_answer, fast, shap, x)
        except (ValueError, IndexError, TypeError) as exc:
            raise ServiceError(422, "prediction_failed", f"{type(exc).__name__}: {exc}", "data",
                               retryable=False) from None
        if shap is not None:
            result["explanation"] = _explanation(result["explanation"], batch, info.feature_names)
        return _json(result)

    async def _record(self, account: str, row: DeploymentRecord, inputs: np.ndarray | builtins.list[Any],
                      payload: bytes) -> None:
        """Queue the call for the operations log (encoded and written off the request path)."""
        await self.recorder.add(account, row.ownerid, row.deployment_id, row.model_id,
                                inputs if row.inference_data else None, payload)

    async def features_for_drift(self, account: str, deployment_id: str) -> tuple[DeploymentRecord, ModelInfo]:
        row = await self._row(account, deployment_id)
        worker = await self._worker(row)
        return row, ModelInfo(**worker.info.model_dump())



def _json(result: dict[str, Any]) -> bytes:
    """The response body: pydantic-core's serializer writes a 100-float prediction ~20x faster
    than `json.dumps`, each float as the shortest text that reads back to the same value (as
    `repr`; the notation may differ: 1e-05 is 0.00001). NaN/Infinity as json.dumps writes them."""
    return to_json(result, inf_nan_mode="constants")


def _answer(fast: Predict, shap: TreeShap | LinearShap | None, x: np.ndarray) -> dict[str, Any]:
    pred = fast(x)
    out: dict[str, Any] = {"prediction": pred.tolist()}
    if shap is not None:
        out["explanation"] = shap.explain(x, pred)
    return out


def _explanation(items: list[dict[str, Any]], batch: bool, feature_names: list[str] | None) -> dict[str, Any]:
    """The response's explanation: per-row SHAP items as one object (lists of rows for a batch)."""
    explanation = {"method": "shap", "explainer": items[0]["explainer"], "feature_names": feature_names}
    for key in ("feature_importance", "base_value", "output", "explained_class"):
        if key in items[0]:
            explanation[key] = [it[key] for it in items] if batch else items[0][key]
    return explanation
