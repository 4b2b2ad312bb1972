"""Error envelopes: OpenAI's for /v1, `{"error", "details"}` for the other surfaces.

No traceback ever reaches a client; validation errors name the field.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..auth.identity import AuthError
from ..errors import DATABASE_ERRORS, RETRY_AFTER_SECONDS, ServiceError, is_transient

log = logging.getLogger("mlagent.api")

OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "invalid_request_error", 409: "invalid_request_error", 429: "rate_limit_error"}
# Surfaces with OpenAI's envelope; everything else answers {"error", "details"}.
OPENAI_PREFIXES = ("/v1/",)
# Seed 001's surfaces list 400 (not 422) for invalid parameters.
SEED_001_PREFIXES = ("/api/tasks", "/api/users", "/ml-api/", "/ninja-api/")


def _is_openai(request: Request) -> bool:
    return request.url.path.startswith(OPENAI_PREFIXES)


def validation_status(path: str) -> int:
    """400 on /v1 and seed 001's surfaces (their seeds say 400 for invalid parameters), 422 on
    the FastAPI-born seeds 002 (/api/v1) and 003 (/model, /mltraining, /deployment)."""
    return 400 if path.startswith(OPENAI_PREFIXES) or path.startswith(SEED_001_PREFIXES) else 422


def error_response(
    request: Request, status: int, code: str, message: str, param: str | None = None,
    details: dict | None = None, retryable: bool = True,
) -> JSONResponse:
    headers = {} if retryable else {"x-should-retry": "false"}
    if _is_openai(request):
        body: dict[str, Any] = {"error": {"message": message, "type": OPENAI_TYPES.get(status, "server_error" if status >= 500 else
                                                                              "invalid_request_error"),
                          "param": param, "code": code}}
    else:
        body = {"error": message, "details": details if details is not None else ({"field": param} if param else {})}
        body["details"].setdefault("code", code)
    return JSONResponse(body, status_code=status, headers=headers)


def param_path(parts: tuple | list) -> str:
    """`("input", 0, "content")` -> `input[0].content`."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) or str(p).isdigit() else (f".{p}" if out else str(p))
    return out


_ABSENT = object()


def _child(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(key, str):  # JSON or a form
        return value.get(key, _ABSENT)
    if isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
        return value[key]
    return _ABSENT


def _field_loc(loc: tuple, body: Any, missing: bool) -> tuple:
    """The error's location as the caller wrote it: pydantic adds the union member it tried
    (`input.str`, `input.list[InputMessage]`); walking the body drops what is not in it."""
    if not loc or loc[0] != "body":
        return tuple(p for p in loc if p not in ("query", "path", "header", "cookie"))
    kept: list = []
    current: Any = body
    rest = loc[1:]
    for i, p in enumerate(rest):
        child = _child(current, p)
        if child is not _ABSENT:
            kept.append(p)
            current = child
        elif missing and i == len(rest) - 1:
            kept.append(p)  # the missing field itself
        # else: a union member or validator tag, not part of the caller's document
    return tuple(kept)


def _json_position(doc: Any, pos: Any) -> str:
    if not isinstance(pos, int):
        return ""
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes | bytearray) else str(doc or "")
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f" at line {line}, column {column} (character {pos})"


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods of the resource at `path` (a 405's `Allow`): the path template of the first
    route that matches, with every method some route declares on that template (routes that
    share a path are separate objects; Starlette's own header lists only the first one's)."""
    template, methods = None, set()
    for route in iter_route_contexts(app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is None or not regex.match(path):
            continue
        template = template or route.path_format
        if route.path_format == template:
            methods |= route.methods or set()
    return sorted(methods)


def service_error_response(request: Request, exc: ServiceError) -> JSONResponse:
    """A ServiceError in its surface's envelope (also for the shortcuts outside the exception handlers)."""
    response = error_response(request, exc.status, exc.code, exc.message, exc.param, retryable=exc.retryable)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return service_error_response(request, exc)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.message, retryable=exc.status >= 500)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        status = validation_status(request.url.path)
        first: dict[str, Any] = errors[0] if errors else {"loc": ("body",), "msg": "Invalid request"}
        if first.get("type") == "json_invalid":
            reason = str((first.get("ctx") or {}).get("error", "JSON decode error"))
            where = _json_position(exc.body, first.get("loc", (None, None))[-1])
            message = f"The request body is not valid JSON: {reason}{where}."
            return error_response(request, status, "invalid_json", message, None, {"body": message},
                                  retryable=False)
        locs = [_field_loc(tuple(e.get("loc", ())), exc.body, e.get("type") == "missing") for e in errors]
        located = [(param_path(loc) or "body", e) for loc, e in zip(locs, errors, strict=True)]
        # Of a union's branches, the one that got deepest into the value is the one meant.
        param, first = located[max(range(len(locs)), key=lambda i: (len(locs[i]), -i))]
        if first.get("type") == "missing":
            message = f"Missing required parameter: '{param}'."
        else:  # a union's branches each fail on the same field: say all they would take
            reasons = list(dict.fromkeys(str(e.get("msg", "Invalid value")) for p, e in located if p == param))
            message = f"Invalid value for '{param}': {' or '.join(reasons)}."
        details: dict[str, str] = {}
        for p, e in located:
            details.setdefault(p, str(e.get("msg")))
        details.setdefault("field", param)  # as on every other error: the field at fault
        return error_response(request, status, "invalid_request_error", message, param, details, retryable=False)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code,
                                                                                           "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route for {request.method} {request.url.path}."
        status = exc.status_code
        if status == 400:  # the framework could not parse the body (JSON, multipart): a validation error
            status, code = validation_status(request.url.path), "invalid_request_error"
            if isinstance(exc.__cause__, RecursionError):
                code, message = "json_too_deep", "The request body nests arrays/objects too deeply."
        headers = dict(exc.headers or {})
        if status == 405:
            headers["Allow"] = ", ".join(allowed_methods(app, request.url.path))
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}."
        response = error_response(request, status, code, message, retryable=status >= 500)
        response.headers.update(headers)
        return response

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        """A database that cannot serve the request now (a full pool, a lost connection)
        is a 503 the client retries after Retry-After: the failing transaction rolled back
        (only a connection lost during its COMMIT leaves that unknown, which a retry with the
        same Idempotency-Key settles). Any other database error is the server's fault."""
        if not is_transient(exc):
            return await _crash(request, exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        response = error_response(request, 503, "database_unavailable", "The server's database is busy or "
                                  "unreachable; retry after the Retry-After delay.")
        response.headers["Retry-After"] = str(math.ceil(RETRY_AFTER_SECONDS))
        return response

    for database_error in DATABASE_ERRORS:
        app.add_exception_handler(database_error, _database)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "server_error", "The server failed to handle this request.")
