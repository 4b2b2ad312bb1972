"""Error envelopes: OpenAI's for /v1, `{"error", "details"}` for the other surfaces.

No traceback ever reaches a client; validation errors name the field.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..auth.identity import AuthError
from ..errors import ServiceError

log = logging.getLogger("mlagent.api")

OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "invalid_request_error", 409: "invalid_request_error", 429: "rate_limit_error"}
# Surfaces with OpenAI's envelope; everything else answers {"error", "details"}.
OPENAI_PREFIXES = ("/v1/",)
# Seed 001's surfaces list 400 (not 422) for invalid parameters.
SEED_001_PREFIXES = ("/api/tasks", "/api/users", "/ml-api/", "/ninja-api/")


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PREFIXES)


def error_response(
    request: Request, status: int, code: str, message: str, param: str | None = None,
    details: dict | None = None, retryable: bool = True,
) -> JSONResponse:
    headers = {} if retryable else {"x-should-retry": "false"}
    if _is_openai(request):
        body = {"error": {"message": message, "type": OPENAI_TYPES.get(status, "server_error" if status >= 500 else
                                                                              "invalid_request_error"),
                          "param": param, "code": code}}
    else:
        body = {"error": message, "details": details if details is not None else ({"field": param} if param else {})}
        body["details"].setdefault("code", code)
    return JSONResponse(body, status_code=status, headers=headers)


# Segments pydantic adds to a location for the branch of a union it tried (`str`,
# `list[...]`, `function-after[...]`, a tag such as `item:function_call`): not field names.
_BRANCH_LABELS = frozenset({"str", "int", "float", "bool", "list", "dict"})


def _is_branch(part: str) -> bool:
    return part in _BRANCH_LABELS or "[" in part or ":" in part


def _loc(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    parts = [p for i, p in enumerate(parts) if i == 0 or not _is_branch(p)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        response = error_response(request, exc.status, exc.code, exc.message, exc.param, retryable=exc.retryable)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, retryable=exc.status >= 500)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        # Of a union's failed branches, the one that got furthest says what is wrong.
        first = max(errors, key=lambda e: len(e.get("loc", ()))) if errors else {"loc": ("body",),
                                                                               "msg": "Invalid request"}
        param = _loc(tuple(first.get("loc", ())))
        msg = str(first.get("msg", "Invalid value"))
        if first.get("type") == "json_invalid":
            message = "The request body is not valid JSON."
        elif first.get("type") == "missing":
            message = f"Missing required parameter: '{param}'."
        else:
            message = f"Invalid value for '{param}': {msg}."
        details = {_loc(tuple(e.get("loc", ()))): str(e.get("msg")) for e in errors}
        status = 400 if _is_openai(request) or request.url.path.startswith(SEED_001_PREFIXES) else 422
        return error_response(request, status, "invalid_request_error", message, param, details, retryable=False)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}."
        return error_response(request, exc.status_code, code, message, retryable=exc.status_code >= 500)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "server_error", "The server failed to handle this request.")
