"""The one write approvals need to be atomic: a paused turn goes back to `queued`
together with the decision (and any new cap) stored on its session, or not at all."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .db import rowcount
from .tables import Session, Turn


class ApprovalStore:
    """`protocols.Approvals` on SQLite or PostgreSQL."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions

    async def resume(self, turn_id: str, session_id: str, pending: dict[str, Any], max_cost_usd: float | None,
                     owner: str, lease_seconds: float) -> bool:
        """Compare-and-set the turn from `incomplete` to `queued` and store `pending`
        (now carrying the decision); False when the turn was not paused any more."""
        now = time.time()
        async with self._sm() as db, db.begin():
            result = await db.execute(
                update(Turn).where(Turn.id == turn_id, Turn.status == "incomplete")
                .values(status="queued", lease_owner=owner, lease_expires_at=now + lease_seconds, updated_at=now)
            )
            if rowcount(result) != 1:
                return False
            values: dict[str, Any] = {"pending": pending, "updated_at": now}
            if max_cost_usd is not None:
                values["max_cost_usd"] = max_cost_usd
            await db.execute(update(Session).where(Session.id == session_id).values(**values))
            return True
