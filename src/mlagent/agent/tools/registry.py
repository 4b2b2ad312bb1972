"""What the model-registry tools need from the MLConnector, as a protocol with typed shapes.

The agent never imports the registry or serving packages: the composition root
(`server.py`, via `mlagent/mlconnector/agent_port.py`) hands the tools an adapter that calls the
real services as the turn's account — the same account the `/model` and `/deployment`
routes use for that caller, so what the agent registers and deploys is the user's own.
Adapters raise `ToolError` with a message the model can read (field named, no traceback).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .base import ToolError

FileKind = Literal["model", "data", "code", "env"]
FILE_KINDS: tuple[str, ...] = ("model", "data", "code", "env")


def invalid(exc: ValidationError, default: str = "arguments") -> ToolError:
    """The first validation error as a tool result naming the field."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or default
    return ToolError(f"invalid {where}: {first.get('msg', 'invalid value')}")


class ModelRegistration(BaseModel):
    """Seed 003's MLModelCreate: the adapter validates the sub-objects against the registry's schema."""

    model_config = ConfigDict(extra="forbid")
    modelname: str
    modelkind: str
    hyperparameter: list[dict[str, Any]] = []
    modelperformance: list[dict[str, Any]] = []
    trainingresource: list[dict[str, Any]] = []
    runresource: list[dict[str, Any]] = []
    featurelist: list[dict[str, Any]] = []
    inference: list[dict[str, Any]] = []
    modeltags: list[str] = []
    drift_detection: list[dict[str, Any]] = []


class RegisteredFile(BaseModel):
    file_id: str
    model_id: str
    filename: str
    file_kind: str
    size: int
    sha256: str
    version: int


class RegisteredModel(BaseModel):
    model_id: str
    modelname: str
    modelkind: str
    url: str = Field(description="GET this (with the user's credentials) to see the model")
    files: list[RegisteredFile] = []


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str
    deployment_id: str = ""
    ownerid: str = ""
    inference_data: int = 1


class DeploymentInfo(BaseModel):
    deployment_id: str
    model_id: str
    status: str
    reason: str | None = None
    endpoint: str = Field(description="the inference URL: POST {data, explain}")
    status_url: str
    model_type: str | None = None
    feature_names: list[str] | None = None
    classes: list[Any] | None = None


class Prediction(BaseModel):
    prediction: list[Any]
    explanation: dict[str, Any] | None = None


class ModelRegistryPort(Protocol):
    """The MLConnector as the agent sees it; every call acts as `account` only."""

    async def register(self, account: str, spec: ModelRegistration) -> RegisteredModel: ...

    async def upload(self, account: str, model_id: str, filename: str, kind: FileKind,
                     chunks: AsyncIterator[bytes]) -> RegisteredFile: ...

    async def deploy(self, account: str, request: DeployRequest) -> DeploymentInfo: ...

    async def deployment(self, account: str, deployment_id: str) -> DeploymentInfo: ...

    async def predict(self, account: str, deployment_id: str, data: Any, explain: bool) -> Prediction: ...
