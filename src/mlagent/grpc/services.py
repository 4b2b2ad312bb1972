"""AgentService and MLService: translate protobuf messages to the services' typed models.

The API key travels as `x-api-key` metadata; the fine-tuning RPCs also take a Hugging
Face token as `authorization: Bearer <token>` (an hf-backend job needs it). Service errors map to status codes
(400 → INVALID_ARGUMENT, 401 → UNAUTHENTICATED, 404 → NOT_FOUND, …) with the message
naming the field; nothing else of the server leaks into `details`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import grpc
from pydantic import BaseModel, ValidationError

from ..auth.identity import AuthError, Identity
from ..errors import ServiceError, is_transient
from ..finetune.models import ComputeConfig, CreateFineTuningJob, FineTuningJobOut
from ..observability.context import bind_caller, bind_request_id
from ..services import Services
from ..tasks.catalogue import ModelDetail
from ..tasks.models import TaskRequest
from . import agent_runtime_pb2 as pb, agent_runtime_pb2_grpc as pb_grpc

log = logging.getLogger("mlagent.grpc")

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION, 422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED, 502: grpc.StatusCode.UNAVAILABLE, 503: grpc.StatusCode.UNAVAILABLE,
}


def _validation_message(exc: ValidationError, prefix: str = "") -> str:
    first = exc.errors()[0]
    field = prefix + ".".join(str(p) for p in first.get("loc", ())) or "request"
    return f"Invalid value for '{field}': {first.get('msg')}."


def _typed_strings(model: type[BaseModel], values: Mapping[str, str]) -> dict[str, Any]:
    """A proto `map<string, string>` as `model`'s field types: the request models are strict
    (no "3" for an int), so the numbers are parsed here, at the gRPC boundary. An int field
    takes an integral number ("3", "3.0"); anything else is left as sent, so the model
    rejects it naming the field."""
    typed: dict[str, Any] = {}
    for key, raw in values.items():
        field = model.model_fields.get(key)
        kind = field.annotation if field is not None else str
        value: Any = raw
        if kind in (int, float):
            try:
                number = float(raw.strip())
            except ValueError:
                number = None
            if number is not None and math.isfinite(number):
                if kind is float:
                    value = number
                elif number.is_integer():
                    value = int(raw) if raw.strip().lstrip("+-").isdigit() else int(number)
        typed[key] = value
    return typed


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """The call's text metadata (binary `-bin` values are bytes, and none of ours)."""
    return {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}


async def _identity(svc: Services, context: grpc.aio.ServicerContext, bearer: bool) -> Identity:
    """`x-api-key`, else (where `bearer`) `authorization: Bearer <HF token>` — as REST's AnyCaller."""
    metadata = _metadata(context)
    key, auth = metadata.get("x-api-key"), metadata.get("authorization")
    if key or not bearer:
        return svc.api_keys.resolve(key)
    if not auth:
        raise AuthError("Missing credentials: send x-api-key or 'authorization: Bearer <Hugging Face token>' "
                        "metadata.", 401, "missing_api_key")
    if not auth.lower().startswith("bearer ") or not auth[7:].strip():
        raise AuthError("Malformed authorization metadata: send 'Bearer <Hugging Face token>'.", 401)
    return await svc.hf_tokens.validate(auth[7:].strip())


def rpc(fn=None, *, bearer: bool = False):
    """Authenticate from metadata, run, and turn failures into gRPC status codes."""
    if fn is None:
        return functools.partial(rpc, bearer=bearer)

    @functools.wraps(fn)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        try:
            bind_request_id(_metadata(context).get("x-request-id"))
            identity = await _identity(self.svc, context, bearer)
            bind_caller(identity.account, "grpc")  # log lines and turns of this call: account, surface
            return await fn(self, request, context, identity)
        except AuthError as exc:
            code = grpc.StatusCode.UNAUTHENTICATED if exc.status == 401 else STATUS_CODES.get(
                exc.status, grpc.StatusCode.UNAVAILABLE)
            await context.abort(code, exc.message)
        except ServiceError as exc:
            message = exc.message
            if exc.param and exc.param not in message:
                message = f"Invalid '{exc.param}': {message}"
            await context.abort(STATUS_CODES.get(exc.status, grpc.StatusCode.INTERNAL), message)
        except ValidationError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _validation_message(exc))
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            if is_transient(exc):  # a full pool or a lost connection: retryable, as the HTTP 503
                log.warning("database unavailable in %s: %s", fn.__name__, type(exc).__name__)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "The server's database is busy or unreachable; "
                                    "retry shortly.")
            log.exception("unhandled error in %s", fn.__name__)
            await context.abort(grpc.StatusCode.INTERNAL, "The server failed to handle this request.")

    return wrapper


class AgentService(pb_grpc.AgentServiceServicer):
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    @rpc
    async def ExecuteTask(self, request, context, identity: Identity):
        # proto3 cannot tell an empty `tools` from an absent one: empty means no restriction.
        task = TaskRequest(prompt=request.prompt, context=dict(request.context),
                           tools=list(request.tools) or None)
        accepted = await self.svc.tasks.submit(identity, task)
        return pb.ExecuteTaskResponse(**accepted.model_dump())

    @rpc
    async def GetTaskStatus(self, request, context, identity: Identity):
        if not request.task_id:
            raise ServiceError(400, "invalid_request_error", "Missing required parameter: 'task_id'.", "task_id")
        status = await self.svc.tasks.status(identity, request.task_id)
        result = status.result if status.status != "failed" or status.result else (status.error or "")
        return pb.GetTaskStatusResponse(task_id=status.task_id, status=status.status, result=result)


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def model_pb(m: ModelDetail) -> pb.ModelDetail:
    return pb.ModelDetail(id=m.id, name=m.name, version=m.version, description=m.description,
                          parameters={k: _param(v) for k, v in m.parameters.items() if v is not None},
                          created_at=m.created_at, updated_at=m.updated_at)


def job_pb(j: FineTuningJobOut) -> pb.FineTuningJobResponse:
    return pb.FineTuningJobResponse(
        id=j.id, model_id=j.model_id, status=j.status, created_at=j.created_at, updated_at=j.updated_at,
        fine_tuned_model=j.fine_tuned_model or "", training_file=j.training_file,
        validation_file=j.validation_file or "", metrics=j.metrics or {}, error=j.error or "",
    )


class MLService(pb_grpc.MLServiceServicer):
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    @rpc
    async def ListModels(self, request, context, identity: Identity):
        return pb.ListModelsResponse(models=[model_pb(m) for m in self.svc.models.list()])

    @rpc
    async def GetModel(self, request, context, identity: Identity):
        return pb.GetModelResponse(model=model_pb(self.svc.models.get(request.model_id)))

    @rpc(bearer=True)
    async def CreateFineTuningJob(self, request, context, identity: Identity):
        try:
            compute = ComputeConfig.model_validate(_typed_strings(ComputeConfig, request.compute_config))
        except ValidationError as exc:
            raise ServiceError(400, "invalid_request_error", _validation_message(exc, "compute_config."),
                               "compute_config") from None
        req = CreateFineTuningJob(model_id=request.model_id, training_file=request.training_file,
                                  validation_file=request.validation_file or None, suffix=request.suffix or None,
                                  compute_config=compute)
        return job_pb(await self.svc.finetune.create(identity, req))

    @rpc(bearer=True)
    async def GetFineTuningJob(self, request, context, identity: Identity):
        return job_pb(await self.svc.finetune.get(identity, request.job_id))

    @rpc(bearer=True)
    async def CancelFineTuningJob(self, request, context, identity: Identity):
        result = await self.svc.finetune.cancel(identity, request.job_id)
        return pb.CancelFineTuningJobResponse(status=result.status, message=result.message)
