"""The inference-operations log and drift reports over it. NumPy and the modules using it are
imported where first used: this service is built at start (serving/service.py says why)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from ..errors import ServiceError, not_found
from ..store.records import OperationRecord
from .schemas import DriftReport, MLDeploymentOposCreate, MLDeploymentOposReturn
from .service import DeploymentService

if TYPE_CHECKING:
    import numpy as np


def _view(row: OperationRecord) -> MLDeploymentOposReturn:
    from . import rowcodec

    return MLDeploymentOposReturn(operationid=row.id, ownerid=row.ownerid, deploymentid=row.deployment_id,
                                  modelid=row.model_id, data=rowcodec.as_json(row.data), result=row.result, created_at=row.created_at)


class MonitoringService:
    def __init__(self, deployments: DeploymentService) -> None:
        self.deployments = deployments
        self.store = deployments.store
        self.recorder = deployments.recorder

    async def record(self, account: str, body: MLDeploymentOposCreate) -> MLDeploymentOposReturn:
        from . import rowcodec

        if await self.store.get_deployment(account, body.deploymentid) is None:
            raise not_found("deployment", body.deploymentid, "deploymentid")
        await self.recorder.flush()
        return _view(await self.store.add_operation(account=account, ownerid=body.ownerid,
                                                     deployment_id=body.deploymentid, model_id=body.modelid,
                                                     data=rowcodec.text(body.data), result=body.result))

    async def by_owner(self, account: str, ownerid: str, skip: int, limit: int) -> list[MLDeploymentOposReturn]:
        await self.recorder.flush()
        return [_view(r) for r in await self.store.list_operations(account, ownerid=ownerid, skip=skip, limit=limit)]

    async def drift(self, account: str, deployment_id: str, method: int | None) -> DriftReport:
        import numpy as np

        from . import rowcodec
        from .drift import METHODS, drift_report
        from .inputs import parse_rows

        row, info = await self.deployments.features_for_drift(account, deployment_id)
        model = await self.deployments.registry.get(account, row.model_id)
        spec = model.drift
        if spec is None:
            raise ServiceError(409, "drift_detection_off", f"Drift detection is off for model {row.model_id!r}: "
                               "set drift_detection [{is_true: 1, method: 0|1|2}].", "deployment_id",
                               retryable=False)
        method = spec.method if method is None else method
        data = await self.deployments.registry.latest(account, row.model_id, "data")
        if data is None:
            raise ServiceError(409, "training_data_missing", "Drift needs the model's training data: upload a "
                               "file with file_kind=data.", "deployment_id", retryable=False)
        await self.recorder.flush()
        ops = await self.store.list_operations(account, deployment_id=deployment_id, limit=100_000)
        current, skipped = [], 0
        for op in ops:
            x = rowcodec.matrix(op.data)
            if x is not None:
                if (info.n_features is None or x.shape[1] == info.n_features) and np.isfinite(x).all():
                    current.append(x)
                else:
                    skipped += 1
                continue
            try:
                rows, _ = parse_rows(json.loads(op.data), info.feature_names, info.n_features, 1_000_000)
                current.append(np.asarray(rows, dtype=np.float64))
            except (ValueError, ServiceError):
                skipped += 1
        if not current:
            raise ServiceError(409, "no_inference_data", "No recorded inference inputs for this deployment yet "
                               "(predict with inference_data=1 first).", "deployment_id", retryable=False)
        names, reference = await asyncio.to_thread(_reference, data[1], info, *model.feature_names())
        inputs = np.concatenate(current)
        features = await asyncio.to_thread(drift_report, names, reference, inputs, method)
        return DriftReport(deployment_id=deployment_id, modelid=row.model_id, method=method,
                           method_name=METHODS[method][0], threshold=METHODS[method][1], n_reference=len(reference),
                           n_current=len(inputs), skipped_operations=skipped,
                           drift_detected=any(f.drift for f in features), features=features)


def _reference(path, info, inputs: list[str], targets: list[str]) -> tuple[list[str], np.ndarray]:
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(path)
    cols = info.feature_names or inputs or [c for c in frame.columns if c not in targets]
    if not info.feature_names and info.n_features is not None and len(cols) == info.n_features + 1:
        cols = cols[:-1]
    missing = [c for c in cols if c not in frame.columns]
    if missing or (info.n_features is not None and len(cols) != info.n_features):
        raise ServiceError(409, "training_data_mismatch", "The training data's columns do not match the model's "
                           "features.", "deployment_id", retryable=False)
    return [str(c) for c in cols], frame[cols].to_numpy(dtype=np.float64)
