"""The OpenAPI document tells the truth about errors: each operation lists the statuses it
answers and the envelope each comes in (OpenAI's on /v1, `{"error", "details"}` elsewhere).

What a surface's services refuse with is declared per router (the `*_ERRORS` dicts below,
passed as `responses=`); what every operation shares by construction is added here from
its shape: 401 when it takes credentials, 404 when it has a path id, the surface's
validation status (400 or 422, api/errors.py) when it takes parameters, 413 when it takes a
body, 503 when it changes state (refused while the server stops). FastAPI's own 422
`HTTPValidationError` is dropped: no route ever answers with that body.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from .errors import OPENAI_PREFIXES, validation_status


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = Field(description="The request field at fault, as `input[0].content`; null when none")
    code: str | None


class OpenAIError(BaseModel):
    """The /v1 error envelope (OpenAI's)."""

    error: OpenAIErrorDetail


class ApiError(BaseModel):
    """The error envelope of /api, /ml-api, /ninja-api and the MLConnector surfaces."""

    error: str = Field(description="What went wrong, for a person")
    details: dict[str, Any] = Field(description="`code` (stable, for programs), `field` or one entry per field")


DESCRIPTIONS = {
    400: "Invalid request: the error names the parameter or body field",
    401: "Missing or invalid credentials",
    403: "The credentials may not do this",
    404: "No such resource for this caller (another account's resources are 404 too)",
    409: "Conflicts with the resource's current state",
    413: "The request body is larger than this endpoint's limit",
    422: "Invalid request: the error names the parameter or body field",
    429: "A limit on live sessions or budgets was reached",
    502: "An upstream service (the Hugging Face Hub) failed",
    503: "Unavailable for now: the server is stopping, or a dependency it needs is not there",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The statuses a surface answers; `_complete` gives each its envelope by path (no `model`
    here: FastAPI would build a pydantic adapter per status per route at start, ~500 in all,
    for this document only)."""
    return {code: {"description": DESCRIPTIONS[code]} for code in codes}


# What each surface's services answer besides the shared statuses `install` adds.
V1_ERRORS = errors(400, 403, 404, 409, 429)  # OpenAIError
AGENT_RUNTIME_ERRORS = errors(400, 403, 404, 409, 429, 503)  # ApiError: /api/tasks, /api/users, /ninja-api
ML_API_ERRORS = errors(400, 403, 404, 502)  # ApiError
OPERATOR_ERRORS = errors(400, 403, 404, 409, 422, 429)  # ApiError: /api/v1
MLCONNECTOR_ERRORS = errors(404, 409, 422)  # ApiError: /model, /mltraining, /deployment

MUTATING = {"post", "put", "patch", "delete"}
_ENVELOPES = (OpenAIErrorDetail, OpenAIError, ApiError)


def _ref(path: str) -> dict[str, Any]:
    name = "OpenAIError" if path.startswith(OPENAI_PREFIXES) else "ApiError"
    return {"$ref": f"#/components/schemas/{name}"}


def _complete(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    auto = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if auto.get("$ref", "").endswith("/HTTPValidationError"):
        del responses["422"]
    params = op.get("parameters", [])
    headers = {p["name"].lower() for p in params if p["in"] == "header"}
    codes: set[int] = set()
    if headers & {"authorization", "x-api-key"}:
        codes.add(401)
        if "authorization" in headers:
            codes |= {502, 503}  # the Hub could not validate the token
    if any(p["in"] == "path" for p in params):
        codes.add(404)  # also a NUL in the path (api/limits.py)
    if params or "requestBody" in op:
        codes.add(validation_status(path))
    if "requestBody" in op:
        codes.add(413)
    if method in MUTATING:
        codes.add(503)
    for code in sorted(codes):
        responses.setdefault(str(code), {
            "description": DESCRIPTIONS[code], "content": {"application/json": {"schema": _ref(path)}}})
    for status, response in responses.items():
        if status[:1] in "45":  # errors are JSON even where the route's success is text or SSE
            response["content"] = {"application/json": {"schema": _ref(path)}}


def _untyped_file_parts(component: dict[str, Any]) -> None:
    """An uploaded file is a multipart part of raw bytes: any bytes are a file, so the part
    has a media type (`contentMediaType`, OpenAPI 3.1) but no JSON `type`. FastAPI writes
    `type: string`, which a client (or a fuzzer) reads as a constraint bytes cannot break."""
    for prop in component.get("properties", {}).values():
        if "contentMediaType" in prop and prop.get("type") == "string":
            del prop["type"]


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path, operations in schema.get("paths", {}).items():
            for method, op in operations.items():
                if method in {"get", "post", "put", "patch", "delete"}:
                    _complete(path, method, op)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in _ENVELOPES:
            envelope = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, nested in envelope.pop("$defs", {}).items():
                components.setdefault(name, nested)
            components.setdefault(model.__name__, envelope)
        for component in components.values():
            _untyped_file_parts(component)
        text = str(schema["paths"])
        for unused in ("HTTPValidationError", "ValidationError"):
            if f"/{unused}'" not in text:
                components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
