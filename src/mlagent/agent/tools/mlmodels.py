"""Model-registry tools: register a model the agent trained in its sandbox, upload its files,
deploy it and call predict — in the user's own MLConnector registry (seed 003), through a
`ModelRegistryPort`. The registered model and the deployment are announced as artifacts, so a
"train and deploy" turn ends with the live endpoint on the response's `artifacts[]`."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from ...sandbox import Sandbox
from ..notices import ArtifactNotice
from .base import Tool, ToolContext, ToolError
from .hubclient import clamp, need_str
from .registry import FILE_KINDS, DeploymentInfo, DeployRequest, ModelRegistration, ModelRegistryPort, invalid
from .workspace import open_for_reading, with_reset_notice

CHUNK = 1 << 20
DEPLOY_WAIT_SECONDS = 60
POLL_SECONDS = 0.2

_OBJECTS = {"type": "array", "items": {"type": "object"}}
_REGISTER_PROPS: dict[str, Any] = {
    "modelname": {"type": "string", "description": "e.g. LogisticRegression"},
    "modelkind": {"type": "string", "description": "classification, regression or clustering"},
    "featurelist": {**_OBJECTS, "description": "[{feature_name, type, kind}] — kind 0 = input, 1 = target; "
                                               "names the training-data columns"},
    "hyperparameter": {**_OBJECTS, "description": "[{parameter, value}]"},
    "modelperformance": {**_OBJECTS, "description": "[{metric, order, threshold}]"},
    "trainingresource": {**_OBJECTS, "description": "[{resource_name, value, deploy}]"},
    "runresource": {**_OBJECTS, "description": "[{resource_name, value, deploy}]"},
    "inference": {**_OBJECTS, "description": "[{type, value}]"},
    "modeltags": {"type": "array", "items": {"type": "string"}},
    "drift_detection": {**_OBJECTS, "description": "[{is_true: 0|1, method: 0 KS | 1 PSI | 2 chi-square}]"},
}


def deployment_artifact(dep: DeploymentInfo) -> ArtifactNotice:
    """The `deployment` artifact: seed 000's artifact shape extended to the MLConnector."""
    return ArtifactNotice(type="deployment", id=dep.deployment_id, url=dep.endpoint, model_id=dep.model_id,
                          status=dep.status, status_url=dep.status_url)


class _RegistryTool(Tool):
    def __init__(self, registry: ModelRegistryPort) -> None:
        self.registry = registry


class ModelRegisterTool(_RegistryTool):
    name = "model_register"
    read_only = False
    description = ("Register a model in the user's model registry (MLConnector) with its metadata; returns the "
                   "model_id. Then upload its files with model_upload (the model file, and the training data "
                   "CSV — needed for explanations and drift) and deploy it with model_deploy.")
    parameters = {"type": "object", "properties": _REGISTER_PROPS, "required": ["modelname", "modelkind"]}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        try:
            spec = ModelRegistration.model_validate(arguments)
        except ValidationError as exc:
            raise invalid(exc) from None
        model = await self.registry.register(ctx.account, spec)
        ctx.notify(ArtifactNotice(type="registered_model", id=model.model_id, url=model.url, name=model.modelname))
        return (f"Registered model {model.model_id} ({model.modelname}, {model.modelkind}): {model.url}\n"
                f"Next: model_upload with model_id={model.model_id} and kind=model (a .skops "
                "file), kind=data (the training CSV), optionally kind=code / env.")


async def _read_chunks(fd: int) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(os.read, fd, CHUNK):
        yield chunk


class ModelUploadTool(_RegistryTool):
    name = "model_upload"
    read_only = False
    description = ("Upload a file from your sandbox directory to a registered model, as kind model (a .skops "
                   "file written with skops.io.dump; pickle/joblib are refused), data (training CSV with a "
                   "header), code (.py training script) or env (requirements text). Each upload of a kind is "
                   "a new version; deployments use the latest.")
    parameters = {"type": "object", "properties": {
        "model_id": {"type": "string"},
        "path": {"type": "string", "description": "file in your sandbox directory (relative path)"},
        "kind": {"type": "string", "enum": list(FILE_KINDS)}},
        "required": ["model_id", "path", "kind"]}

    def __init__(self, registry: ModelRegistryPort, sandbox: Sandbox) -> None:
        super().__init__(registry)
        self.sandbox = sandbox

    def _open(self, ctx: ToolContext, rel: str) -> int:
        """Open the sandbox file read-only, following no symlink anywhere on the path
        (sandboxed code controls that directory and may change it at any moment)."""
        fd = open_for_reading(self.sandbox, ctx.session_id, rel)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ToolError(f"{rel!r} is not a regular file in the sandbox")
        return fd

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        return await with_reset_notice(self.sandbox, ctx.session_id, self._upload(arguments, ctx))

    async def _upload(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        model_id = need_str(arguments, "model_id")
        rel = need_str(arguments, "path")
        kind = arguments.get("kind")
        if kind not in FILE_KINDS:
            raise ToolError(f"'kind' must be one of {', '.join(FILE_KINDS)}")
        if kind == "model" and not rel.lower().endswith(".skops"):
            # A pickle runs code when the serving worker loads it, outside this sandbox; a skops
            # file's types are audited at upload (sklearn/numpy/scipy only) and nothing runs.
            raise ToolError("models must be uploaded as .skops files (save with skops.io.dump(model, "
                            "'model.skops')): pickle and joblib files are refused for agent uploads")
        fd = self._open(ctx, rel)
        try:  # closed here, also when the registry refuses before reading (an unstarted generator's
            # own cleanup would never run)
            f = await self.registry.upload(ctx.account, model_id, os.path.basename(rel.rstrip("/")), kind,
                                           _read_chunks(fd))
        finally:
            os.close(fd)
        return (f"Uploaded {rel} to model {f.model_id} as {f.file_kind} file {f.filename} (file_id {f.file_id}, "
                f"{f.size} bytes, version {f.version}, sha256 {f.sha256}).")


class ModelDeployTool(_RegistryTool):
    name = "model_deploy"
    read_only = False
    description = ("Deploy a registered model (its latest model file) as a live inference endpoint and wait until "
                   "it is running (or failed, with the reason). Returns the deployment_id and the endpoint URL "
                   "the user can POST {data, explain} to.")
    parameters = {"type": "object", "properties": {
        "model_id": {"type": "string"},
        "deployment_id": {"type": "string", "description": "optional id (letters, digits, . _ -); generated if empty"},
        "inference_data": {"type": "integer", "enum": [0, 1],
                           "description": "1 (default): log predict inputs (needed for drift); 0: do not"},
        "wait_seconds": {"type": "integer", "minimum": 0, "maximum": 300,
                         "description": f"how long to wait for it to start (default {DEPLOY_WAIT_SECONDS})"}},
        "required": ["model_id"]}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        try:
            request = DeployRequest(model_id=need_str(arguments, "model_id"),
                                    deployment_id=str(arguments.get("deployment_id") or ""),
                                    inference_data=arguments.get("inference_data", 1))
        except ValidationError as exc:
            raise invalid(exc) from None
        dep = await self.registry.deploy(ctx.account, request)
        ctx.notify(deployment_artifact(dep))
        deadline = time.monotonic() + clamp(arguments.get("wait_seconds"), 0, 300, DEPLOY_WAIT_SECONDS)
        while dep.status == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            dep = await self.registry.deployment(ctx.account, dep.deployment_id)
        if dep.status != "pending":
            ctx.notify(deployment_artifact(dep))  # same artifact, status updated in place
        lines = [f"Deployment {dep.deployment_id} of model {dep.model_id}: {dep.status}"
                 + (f" ({dep.reason})" if dep.reason else ""),
                 f"endpoint: POST {dep.endpoint} with JSON {{\"data\": [row or rows], \"explain\": true|false}}",
                 f"status: GET {dep.status_url}"]
        if dep.model_type:
            lines.append(f"model: {dep.model_type}; features: {dep.feature_names or '?'}"
                         + (f"; classes: {dep.classes}" if dep.classes is not None else ""))
        if dep.status == "pending":
            lines.append("Still starting; model_predict waits for it to come up.")
        elif dep.status == "running":
            lines.append("Call model_predict with this deployment_id to try it.")
        return "\n".join(lines)


class ModelPredictTool(_RegistryTool):
    name = "model_predict"
    description = ("Call a deployment's predict: `data` is one row (list of numbers, or {feature: value}) or a list "
                   "of rows; with explain=true each prediction comes with SHAP feature contributions.")
    parameters = {"type": "object", "properties": {
        "deployment_id": {"type": "string"},
        "data": {"description": "one row or a list of rows",
                 "anyOf": [{"type": "array"}, {"type": "object"}]},
        "explain": {"type": "boolean"}},
        "required": ["deployment_id", "data"]}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        deployment_id = need_str(arguments, "deployment_id")
        if "data" not in arguments:
            raise ToolError("'data' is required: one row or a list of rows")
        explain = arguments.get("explain", False)
        if not isinstance(explain, bool):
            raise ToolError("'explain' must be true or false")
        result = await self.registry.predict(ctx.account, deployment_id, arguments["data"], explain)
        return json.dumps(result.model_dump(exclude_none=True))
