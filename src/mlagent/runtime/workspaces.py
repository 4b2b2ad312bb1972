"""The sandbox retention sweep: per-session sandbox directories would otherwise grow
forever. The keeper calls `WorkspaceSweeper.maybe_sweep` on each tick; a directory is
removed only when all of these hold:

- it has not been used (file access or command) for the retention period;
- its session is not live in this process (idle eviction has released it);
- in the database, the session has no queued or running turn and no activity
  (`sessions.updated_at`) within the retention period.

The sandbox package is below the runtime but not its business: `server.py` hands in the
`Sandbox` as a `Workspaces`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ..store.protocols import Sessions
from .live import LiveSessions

log = logging.getLogger("mlagent.runtime")

MAX_SWEEP_INTERVAL = 300.0


class Workspaces(Protocol):
    def idle_sessions(self, idle_seconds: float) -> list[str]:
        """Sessions whose workspace has not been used for `idle_seconds`."""

    def remove(self, session_id: str) -> bool:
        """Take the session's workspace away at once (quick: no deleting yet)."""

    def purge(self) -> None:
        """Delete what `remove` took away (slow; run in a thread)."""


class WorkspaceSweeper:
    def __init__(self, workspaces: Workspaces, sessions: Sessions, live: LiveSessions,
                 retention_seconds: float) -> None:
        self.workspaces = workspaces
        self.sessions = sessions
        self.live = live
        self.retention = retention_seconds
        self.every = min(MAX_SWEEP_INTERVAL, retention_seconds / 4)
        self._last = 0.0
        self._purging: asyncio.Task[None] | None = None

    async def maybe_sweep(self) -> list[str]:
        if self.retention <= 0 or time.monotonic() - self._last < self.every:
            return []
        self._last = time.monotonic()
        return await self.sweep()

    async def sweep(self) -> list[str]:
        idle = [s for s in await asyncio.to_thread(self.workspaces.idle_sessions, self.retention)
                if self.live.get(s) is None]
        busy = await self.sessions.busy(idle, since=time.time() - self.retention) if idle else set()
        removed = []
        for session_id in idle:
            # Checked again with no await before the (atomic) removal: a turn this process
            # started meanwhile made the session live.
            if session_id not in busy and self.live.get(session_id) is None and self.workspaces.remove(session_id):
                removed.append(session_id)
        self._purge()
        if removed:
            log.info("removed %d idle session sandbox(es) (retention %.1f h)", len(removed), self.retention / 3600)
        return removed

    def _purge(self) -> None:
        """Delete the trash in the background, one purge at a time: it can take minutes for a
        big tree, and the keeper's tick (lease renewal) must not wait for it."""
        if self._purging is None or self._purging.done():
            self._purging = asyncio.create_task(asyncio.to_thread(self.workspaces.purge), name="sandbox-purge")
            self._purging.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("deleting removed sandboxes failed", exc_info=task.exception())
