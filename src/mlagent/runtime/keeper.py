"""The runtime's housekeeping loop: renew this process's leases, notice cancellations
requested through another process, evict idle sessions, end orphaned turns, and remove
the sandboxes of sessions idle past the retention period (`workspaces.py`)."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

from ..events.bus import EventBus
from ..store.protocols import Turns
from ..store.transient import retrying
from .live import LiveSessions
from .runner import TurnRunner, mark_interrupted
from .workspaces import WorkspaceSweeper

log = logging.getLogger("mlagent.runtime")


async def recover_on_start(turns: Turns, bus: EventBus, single_process: bool) -> int:
    """End turns a dead process left behind. With SQLite this process is the only one,
    so every unfinished turn is an orphan; with PostgreSQL only expired leases are."""
    orphans = await turns.orphaned(time.time(), include_unleased=single_process)
    count = 0
    for turn in orphans:
        count += await mark_interrupted(turns, bus, turn.id)
    if count:
        log.warning("recovered %d turn(s) interrupted by a restart (incomplete / server_restart)", count)
    return count


class Keeper:
    def __init__(self, turns: Turns, bus: EventBus, live: LiveSessions, runner: TurnRunner,
                 lease_seconds: float, idle_seconds: float, sweeper: WorkspaceSweeper | None = None) -> None:
        self.turns = turns
        self.bus = bus
        self.live = live
        self.runner = runner
        self.lease_seconds = lease_seconds
        self.idle_seconds = idle_seconds
        self.sweeper = sweeper
        self.interval = max(0.2, min(lease_seconds / 3, idle_seconds / 4, 10.0))

    async def tick(self) -> None:
        # Retried while the database is busy: a lapsed lease would end a running turn.
        cancelled = await retrying(partial(self.turns.renew_many, self.runner.held(), self.runner.owner,
                                           self.lease_seconds), "lease renewal", attempts=4)
        for turn_id in cancelled:
            self.runner.cancel_local(turn_id)
        self.live.evict_idle(self.idle_seconds)
        for turn in await self.turns.orphaned(time.time(), include_unleased=False):
            if turn.id not in self.runner.held():
                await mark_interrupted(self.turns, self.bus, turn.id)
        if self.sweeper is not None:
            await self.sweeper.maybe_sweep()

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("housekeeping tick failed")
