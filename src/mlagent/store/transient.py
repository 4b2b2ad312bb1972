"""Which database failures are passing (a full pool, a dropped or restarted connection)
and how to retry a statement that met one.

A passing failure changed nothing that a retry could duplicate when it happened before the
transaction committed: a pool timeout is raised before any statement is sent, and a
dropped connection rolls back what it had not committed. The callers that retry are the
idempotent reads (a stream's log read) and the worker's compare-and-set steps (its claim);
a request that still cannot get the database answers 503 with Retry-After (api/errors.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..errors import RETRY_AFTER_SECONDS, is_transient

__all__ = ["RETRY_AFTER_SECONDS", "STREAM_READ_ATTEMPTS", "is_transient", "retrying"]

T = TypeVar("T")
log = logging.getLogger("mlagent.store")

# A stream's reads wait this many attempts (~1 min at 4 s apart) before the stream gives up.
STREAM_READ_ATTEMPTS = 16


async def retrying(step: Callable[[], Awaitable[T]], what: str, attempts: int = 5, first_delay: float = 0.25,
                   max_delay: float = 4.0) -> T:
    """`step()`, again after a passing failure (with a delay doubling up to `max_delay`),
    up to `attempts` times; the last failure, or any other, is raised."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await step()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning("%s: %s (attempt %d of %d); retrying in %.2fs", what, type(exc).__name__, attempt,
                        attempts, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")
