"""HTTP calls to an mlagent server, with its error envelopes turned into `ApiError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from httpx_sse import EventSource, connect_sse

from .. import __version__


class ApiError(Exception):
    """The server answered an error (or could not be reached: `status` 0)."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status == 429 or self.status >= 500

    def __str__(self) -> str:
        where = f" (param {self.param})" if self.param else ""
        code = f" [{self.code}]" if self.code else ""
        status = f"HTTP {self.status}" if self.status else "no connection"
        return f"{self.message}{where}{code} — {status}"

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read both envelopes: /v1's `{"error": {message, code, param}}` and `{"error", "details"}`."""
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code, response.text[:300] or response.reason_phrase)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            return cls(response.status_code, str(err.get("message") or err), err.get("code"), err.get("param"))
        if isinstance(err, str):
            details = body.get("details")
            return cls(response.status_code, f"{err}: {details}" if details else err)
        return cls(response.status_code, str(body)[:300])


class Api:
    """One server and one token. The token only ever goes into the Authorization header."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0, read_timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"mlagent-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        # A stream is quiet between events except for the server's keep-alive comments
        # (every MLAGENT_KEEPALIVE_SECONDS, 15 by default): a longer silence is a dead connection.
        self._stream_timeout = httpx.Timeout(timeout, read=read_timeout)

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"cannot reach the mlagent server at {self.url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response.json()

    # The calls the commands make, each one endpoint of the public API.
    def create(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", "/v1/responses", json=body, headers=headers)

    def get(self, response_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/responses/{response_id}")

    def cancel(self, response_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/responses/{response_id}/cancel")

    def approve(self, response_id: str, approve: bool, new_max_cost_usd: float | None = None,
                feedback: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"approve": approve}
        if new_max_cost_usd is not None:
            body["new_max_cost_usd"] = new_max_cost_usd
        if feedback:
            body["feedback"] = feedback
        return self.request("POST", f"/v1/responses/{response_id}/approvals", json=body)

    def list(self, limit: int | None = None, after: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"limit": limit, "after": after}.items() if v is not None}
        return self.request("GET", "/v1/responses", params=params)

    def models(self) -> dict[str, Any]:
        return self.request("GET", "/api/config/model")

    def usage(self) -> dict[str, Any]:
        return self.request("GET", "/api/v1/usage")

    @contextmanager
    def events(self, response_id: str, after: int) -> Iterator[EventSource]:
        """`GET /v1/responses/{id}/events` from just after `after` (`Last-Event-ID`)."""
        headers = {"Accept": "text/event-stream"}
        if after >= 0:
            headers["Last-Event-ID"] = str(after)
        with connect_sse(self._http, "GET", f"/v1/responses/{response_id}/events", headers=headers,
                         timeout=self._stream_timeout) as source:
            if source.response.status_code >= 400:
                source.response.read()
                raise ApiError.from_response(source.response)
            yield source
