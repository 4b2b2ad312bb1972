"""The agent's `ModelRegistryPort`, backed by the real MLConnector services.

Every call runs as the turn's account — the account the `/model` and `/deployment` routes
resolve for the same caller — so a model the agent registers is listed by `GET /model/all`
and its deployment answers `POST /deployment/{id}/predict` for the user's own token, and is
a 404 for anyone else. Only the services' public methods are used."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from pydantic import ValidationError

from ..agent.tools.base import ToolError
from ..agent.tools.registry import (
    DeploymentInfo,
    DeployRequest,
    FileKind,
    ModelRegistration,
    Prediction,
    RegisteredFile,
    RegisteredModel,
    invalid,
)
from ..errors import ServiceError
from ..registry.schemas import FileSchema, MLModelCreate
from ..registry.service import RegistryService
from ..serving.schemas import MLDeploymentCreate, MLDeploymentReturn
from ..serving.service import DeploymentService

T = TypeVar("T")


async def _call(what: str, call: Awaitable[T]) -> T:
    """Service refusals become tool results the model can act on (status, field, message)."""
    try:
        return await call
    except ServiceError as exc:
        where = f" (field {exc.param!r})" if exc.param else ""
        raise ToolError(f"could not {what}: {exc.message}{where} [HTTP {exc.status} {exc.code}]") from None


def _file(f: FileSchema) -> RegisteredFile:
    return RegisteredFile(file_id=f.id, model_id=f.modelid, filename=f.filename, file_kind=f.file_kind, size=f.size,
                          sha256=f.sha256, version=f.version)


class MLConnectorPort:
    """`ModelRegistryPort` over `RegistryService` + `DeploymentService`. `base_url` is where
    users reach this server (MLAGENT_PUBLIC_URL), for the URLs the agent reports."""

    def __init__(self, registry: RegistryService, deployments: DeploymentService, base_url: str) -> None:
        self.registry = registry
        self.deployments = deployments
        self.base_url = base_url.rstrip("/")

    def _deployment(self, d: MLDeploymentReturn) -> DeploymentInfo:
        info = d.model
        return DeploymentInfo(deployment_id=d.deployment_id, model_id=d.modelid, status=d.status, reason=d.reason,
                              endpoint=d.endpoint,
                              status_url=f"{self.base_url}/deployment/get/status/{d.deployment_id}",
                              model_type=info.model_type if info else None,
                              feature_names=info.feature_names if info else None,
                              classes=info.classes if info else None)

    async def register(self, account: str, spec: ModelRegistration) -> RegisteredModel:
        try:
            body = MLModelCreate.model_validate(spec.model_dump())
        except ValidationError as exc:
            raise invalid(exc, "body") from None
        model = await _call("register the model", self.registry.create(account, body))
        return RegisteredModel(model_id=model.id, modelname=model.modelname, modelkind=model.modelkind,
                               url=f"{self.base_url}/model/{model.id}", files=[_file(f) for f in model.files])

    async def upload(self, account: str, model_id: str, filename: str, kind: FileKind,
                     chunks: AsyncIterator[bytes]) -> RegisteredFile:
        f = await _call(f"upload {filename}", self.registry.upload(account, model_id, filename, kind, chunks))
        return _file(f)

    async def deploy(self, account: str, request: DeployRequest) -> DeploymentInfo:
        try:
            body = MLDeploymentCreate(modelid=request.model_id, deployment_id=request.deployment_id,
                                      ownerid=request.ownerid, inference_data=request.inference_data)
        except ValidationError as exc:
            raise invalid(exc, "body") from None
        return self._deployment(await _call("deploy the model",
                                            self.deployments.create(account, body, self.base_url)))

    async def deployment(self, account: str, deployment_id: str) -> DeploymentInfo:
        return self._deployment(await _call("read the deployment",
                                            self.deployments.get(account, deployment_id, self.base_url)))

    async def predict(self, account: str, deployment_id: str, data: Any, explain: bool) -> Prediction:
        payload = await _call("predict", self.deployments.predict_json(account, deployment_id, data, explain))
        return Prediction.model_validate_json(payload)
