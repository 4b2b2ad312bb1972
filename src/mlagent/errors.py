"""The one exception services raise for a caller's mistake or a refusal.

Each surface renders it in its own envelope (OpenAI's for /v1, `{"error", "details"}`
for /api, a gRPC status for gRPC). Also which failures of the database are passing (a
full pool, a lost connection): every surface answers those as "retry later" (HTTP 503 with
Retry-After, gRPC UNAVAILABLE), and the store retries its idempotent steps on them."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

# The exception types a database failure comes as (a surface registers its handler for them).
DATABASE_ERRORS: tuple[type[Exception], ...] = (PoolTimeout, DBAPIError)
# What a client is told to wait before retrying a request the database could not serve.
RETRY_AFTER_SECONDS = 2.0


def is_transient(exc: BaseException) -> bool:
    """A full pool, a lost connection (the driver's or the network's), or a database that
    is restarting: worth retrying, unlike a constraint or a programming error."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or isinstance(exc, (OperationalError, InterfaceError))
    return isinstance(exc, (ConnectionError, OSError))


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
