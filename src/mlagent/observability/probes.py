"""Readiness checks and the database-backed gauges, for the operator routes (api/ops.py):
the surface asks this service, and only this service touches the engine."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ..store import health as db_health
from . import metrics

log = logging.getLogger("mlagent.ops")
CHECK_TIMEOUT_SECONDS = 2.0
SNAPSHOT_MAX_AGE_SECONDS = 2.0  # scrapes closer together than this reuse the database counts


@dataclass
class Probes:
    """What readiness looks at; built by the composition root."""

    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    listener: Any = None  # store.notify.PgListener when PostgreSQL LISTEN/NOTIFY is on
    grpc: Any = None  # grpc.server.GrpcServer when gRPC is enabled
    metrics_token: str | None = None
    _counted_at: float = 0.0

    async def checks(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        head = db_health.head_revision()
        try:
            current = await asyncio.wait_for(db_health.current_revision(self.engine), CHECK_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; say which
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {_short(exc)}"
            out["database"] = {"ok": False, "error": f"database unreachable ({reason})"}
            out["migrations"] = {"ok": False, "error": "unknown: the database is unreachable", "head": head}
        else:
            out["database"] = {"ok": True}
            ok = current == head
            out["migrations"] = {"ok": ok, "current": current, "head": head}
            if not ok:
                out["migrations"]["error"] = f"database is at {current}, this code needs {head}: run `mlagent migrate`"
        if self.listener is not None:
            connected = self.listener.connected.is_set()
            out["pg_listener"] = {"ok": connected}
            if not connected:
                out["pg_listener"]["error"] = "the LISTEN connection to PostgreSQL is down (reconnecting)"
        if self.grpc is not None:
            out["grpc"] = {"ok": bool(self.grpc.serving), "port": self.grpc.port}
            if not self.grpc.serving:
                out["grpc"]["error"] = "the gRPC server is not serving"
        return out

    async def refresh_counts(self) -> None:
        """The database-backed gauges (approvals pending, jobs), at most every few seconds."""
        if time.monotonic() - self._counted_at < SNAPSHOT_MAX_AGE_SECONDS:
            return
        try:
            pending, jobs = await asyncio.wait_for(
                asyncio.gather(db_health.approvals_pending(self.sessionmaker), db_health.jobs_by_state(self.sessionmaker)),
                CHECK_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - keep serving the process's own metrics
            log.warning("metrics: database counts unavailable: %s", type(exc).__name__)
            return
        metrics.SNAPSHOT.approvals_pending, metrics.SNAPSHOT.jobs = pending, jobs
        self._counted_at = time.monotonic()


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else "no detail"
