"""Job leases: which replica runs an unfinished job, and until when it has said so.

A replica that runs a local job (a `/mltraining` run, a local fine-tuning job) holds the
job's row: `lease_owner` is its replica id (jobs/replica.py) and `lease_expires_at` is
pushed forward by its heartbeat while the job runs. So, with several replicas on one
database, a replica can tell its own dead jobs (after its restart) and the jobs of a
replica that stopped (its lease expired) from the jobs another live replica is running,
which it leaves alone. Every move to `failed` here is one conditional UPDATE, so two
replicas sweeping at once fail a job once."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import rowcount


class JobLeases:
    """Lease operations on one job table (`table` has id, status, lease_owner,
    lease_expires_at, updated_at); `unfinished` are its non-terminal statuses, `scope` an
    optional condition on the rows that take leases at all (e.g. only local jobs)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], table: Any, unfinished: tuple[str, ...],
                 scope: Any = None) -> None:
        self._sm = sessions
        self.table = table
        self.unfinished = unfinished
        self.scope = scope

    def _lost(self, owner: str, now: float, mine: bool) -> tuple[Any, ...]:
        """Unfinished and nobody alive holds it: no lease (a row from before leases), an
        expired one, or (with `mine`, at start-up) one this replica's previous run held."""
        t = self.table
        held_by_nobody = or_(t.lease_owner.is_(None), t.lease_expires_at.is_(None), t.lease_expires_at < now)
        where = [t.status.in_(self.unfinished), or_(held_by_nobody, t.lease_owner == owner) if mine else held_by_nobody]
        return (*where, self.scope) if self.scope is not None else tuple(where)

    async def renew(self, job_ids: Sequence[str], owner: str, lease_seconds: float) -> None:
        if not job_ids:
            return
        t = self.table
        async with self._sm() as db, db.begin():
            await db.execute(update(t).where(t.id.in_(tuple(job_ids)), t.status.in_(self.unfinished))
                             .values(lease_owner=owner, lease_expires_at=time.time() + lease_seconds))

    async def lost(self, owner: str, mine: bool) -> list[Any]:
        """The unfinished jobs no live replica holds (see `_lost`)."""
        async with self._sm() as db:
            q = select(self.table).where(*self._lost(owner, time.time(), mine))
            return list((await db.execute(q)).scalars())

    async def fail(self, job_id: str, owner: str, mine: bool, **values: Any) -> bool:
        """Mark one lost job failed (with `values`, e.g. the reason) if it still is lost;
        False when it finished or another replica took or failed it meanwhile."""
        t = self.table
        now = time.time()
        async with self._sm() as db, db.begin():
            result = await db.execute(update(t).where(t.id == job_id, *self._lost(owner, now, mine))
                                      .values(status="failed", updated_at=now, lease_expires_at=None, **values))
            return rowcount(result) == 1
