"""Which agents the operator paused, kept in the database so a pause outlives a restart."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .tables import PausedAgent


class PauseStore:
    """`protocols.Pauses` on SQLite or PostgreSQL."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions

    async def names(self) -> list[str]:
        async with self._sm() as db:
            return sorted((await db.execute(select(PausedAgent.agent))).scalars())

    async def add(self, agent: str, by: str) -> None:
        """Record the pause (idempotent: pausing a paused agent keeps the first record)."""
        try:
            async with self._sm() as db, db.begin():
                if await db.get(PausedAgent, agent) is None:
                    db.add(PausedAgent(agent=agent, paused_by=by, paused_at=time.time()))
        except IntegrityError:  # paused concurrently by another request or replica
            pass

    async def remove(self, agent: str) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(delete(PausedAgent).where(PausedAgent.agent == agent))

    async def keep(self, agents: Iterable[str]) -> None:
        """Drop the pauses of agents no longer in the organism."""
        async with self._sm() as db, db.begin():
            await db.execute(delete(PausedAgent).where(PausedAgent.agent.not_in(list(agents))))
