"""The one exception services raise for a caller's mistake or a refusal.

Each surface renders it in its own envelope (OpenAI's for /v1, `{"error", "details"}`
for /api, a gRPC status for gRPC)."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        param: str | None = None,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds, sent as Retry-After when set
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.retryable = retryable


def not_found(what: str, ident: str, param: str | None = None) -> ServiceError:
    return ServiceError(404, "not_found", f"No {what} with id {ident!r} was found.", param, retryable=False)
