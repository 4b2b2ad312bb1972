"""Bounds on a request, applied before it costs anything: a pure ASGI middleware.

- The body is capped per surface: a `Content-Length` over the cap is refused before a byte
  is read, and a body without one (chunked) is counted as it streams and stopped at the cap.
  Uploads (multipart) stream through to their handler, still counted; JSON bodies (capped
  small) are read here, checked, and handed on unchanged.
- JSON nesting is limited before the body is parsed (a scan of the raw bytes), so a body
  100,000 levels deep is a 400, not a recursion error somewhere deeper. Predict is the one
  exception: its route parses with pydantic-core, whose parser stops at its own nesting
  limit (a clean 422 there, `json_too_deep`), and then accepts only rows of numbers; the
  scan would be a second pass over its largest bodies (it cost as much as the parse).
- No string in a request may hold a NUL character (PostgreSQL text cannot store one): in
  the path it names nothing, so 404; in the query or a JSON body it is the surface's
  validation error naming the field.

Every refusal is in the surface's envelope (api/errors.py). docs/limits.md has the figures.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from .errors import error_response, param_path, validation_status

# Offsets and sequence numbers end at the databases' 32-bit integer columns: past that is a
# client's mistake (a 400/422 naming the parameter), not an overflow in the driver.
MAX_INT32 = 2**31 - 1
# A multipart body carries boundaries and part headers around the file: room for them.
MULTIPART_SLACK = 64 * 1024
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN_CLOSE = bytes.maketrans(b"{}", b"[]")
# `\u0000` not itself escaped (`\\u0000` is the text "\u0000", not a NUL).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` when a streamed body passes its cap. An HTTPException, so FastAPI's
    body reading lets it through to the error handlers (it turns other errors into 400s)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than this endpoint's limit of {limit} bytes.")
        self.limit = limit


def json_too_deep(raw: bytes, max_depth: int) -> bool:
    """True when the JSON in `raw` nests arrays/objects deeper than `max_depth`. Strings are
    cut out (escaped backslashes and quotes first, then every other piece between quotes),
    `{}` folded into `[]`, and the depth is the running sum's maximum: C and numpy speed,
    no recursion, whatever the input (bench/request_bounds.py has the figures)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    outside = b"".join(raw.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    brackets = outside.translate(_OPEN_CLOSE, _NOT_BRACKETS)
    if len(brackets) <= max_depth:
        return False
    if b"[" * (max_depth + 1) in brackets:  # the usual attack, found by a substring search
        return True
    import numpy as np  # here: rarely reached, and not imported at start (server.WARM_IMPORTS)

    steps = 92 - np.frombuffer(brackets, dtype=np.uint8).astype(np.int32)  # "[" is 91: +1, "]" is 93: -1
    return int(np.cumsum(steps).max()) > max_depth


def _nul_path(value: Any, path: tuple = ()) -> tuple | None:
    """Where in parsed JSON the first string (key or value) holding a NUL is."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return (*path, key)
            found = _nul_path(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _nul_path(item, (*path, i))
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class BodyLimits:
    """The body cap of each surface, in bytes (settings: docs/limits.md)."""

    default: int
    # (path, body cap, whether the middleware scans a JSON body's depth: False where the route
    # parses with a bounded parser itself)
    rules: tuple[tuple[re.Pattern[str], int, bool], ...]
    max_json_depth: int

    @classmethod
    def from_settings(cls, s: Settings) -> BodyLimits:
        return cls(
            default=s.max_body_bytes,
            rules=(
                (re.compile(r"^/deployment/[^/]+/predict/?$"), s.max_predict_body_bytes, False),
                (re.compile(r"^/model/[^/]+/upload/?$"), s.max_upload_bytes + MULTIPART_SLACK, True),
                (re.compile(r"^/ml-api/files/?$"), s.max_training_file_bytes + MULTIPART_SLACK, True),
            ),
            max_json_depth=s.max_json_depth,
        )

    def for_path(self, path: str) -> tuple[int, bool]:
        """(the body cap, whether to scan a JSON body's depth) for a request path."""
        for pattern, limit, scan in self.rules:
            if pattern.match(path):
                return limit, scan
        return self.default, True


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """(Content-Length, or None when absent or not a number; whether a Transfer-Encoding is
    given). Neither means the request has no body (RFC 9112 6.3)."""
    length: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
            chunked = chunked or length is None  # unreadable: let the body be counted as it streams
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


class RequestLimits:
    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check_target(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        length, chunked = _body_headers(scope)
        if not length and not chunked:  # no body (most GETs): nothing to bound
            await self.app(scope, receive, send)
            return
        limit, scan_depth = self.limits.for_path(scope["path"])
        if length is not None and length > limit:
            await self._too_large(scope, receive, send, limit)
            return
        if _is_json(scope):
            await self._json(scope, receive, send, limit, scan_depth)
        else:
            await self._streamed(scope, receive, send, limit)

    def _check_target(self, scope: Scope):
        if "\x00" in scope["path"]:
            return error_response(Request(scope), 404, "not_found", "No resource has a name or id with a NUL character.",
                                  retryable=False)
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
                if "\x00" in name or "\x00" in value:
                    field = name.replace("\x00", "")
                    return error_response(Request(scope), validation_status(scope["path"]), "invalid_request_error",
                                          f"Invalid value for '{field}': NUL characters are not allowed.", field,
                                          retryable=False)
        return None

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        exc = BodyTooLarge(limit)
        await error_response(Request(scope), 413, "request_too_large", exc.detail, retryable=False)(
            scope, receive, send)

    async def _json(self, scope: Scope, receive: Receive, send: Send, limit: int, scan_depth: bool) -> None:
        """Read the (small) JSON body here, check it, and replay it to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, receive, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        request = Request(scope)
        if scan_depth and json_too_deep(raw, self.limits.max_json_depth):
            response = error_response(request, validation_status(scope["path"]), "json_too_deep",
                                      f"The request body nests arrays/objects deeper than "
                                      f"{self.limits.max_json_depth} levels.", "body", retryable=False)
            await response(scope, receive, send)
            return
        if b"u0000" in raw and _NUL_ESCAPE.search(raw):
            try:  # json.loads, as the routes parse (pydantic-core refuses e.g. a lone surrogate)
                where = _nul_path(json.loads(raw))
            except (ValueError, RecursionError):
                where = None  # not JSON, or too deep (predict's depth is not scanned): the route says so
            if where is not None:
                field = param_path([str(p).replace("\x00", "\\u0000") for p in where]) or "body"
                response = error_response(request, validation_status(scope["path"]), "invalid_request_error",
                                          f"Invalid value for '{field}': NUL characters are not allowed.", field,
                                          retryable=False)
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        size = 0
        started = False

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, receive, send, limit)
