"""Read models for the operator API: sessions as threads, turns as their messages.

A thread's status is derived in SQL (so it can be filtered and counted): `killed` when
the session is closed, `active` while its latest turn is queued or running, `failed`
when that turn failed, `idle` otherwise. Each turn is one inbound message (the input)
and, once it finished, one outbound message (the agent's answer).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, case, exists, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from .tables import Session, Turn

THREAD_STATUSES = ("active", "idle", "failed", "killed")
RUNNING = ("queued", "in_progress")


@dataclass
class ThreadRow:
    id: str
    account: str
    agent: str
    model: str
    status: str
    turns: int
    max_cost_usd: float
    spent_usd: float
    created_at: float
    updated_at: float


@dataclass
class MessageRow:
    turn_id: str
    thread_id: str
    account: str
    agent: str
    outbound: bool
    at: float
    status: str
    request: dict[str, Any]
    snapshot: dict[str, Any]


def _status_expr() -> ColumnElement[str]:
    latest = (
        select(Turn.status).where(Turn.session_id == Session.id)
        .order_by(Turn.created_at.desc(), Turn.id.desc()).limit(1).correlate(Session).scalar_subquery()
    )
    return case(
        (Session.closed.is_(True), "killed"),
        (latest.in_(RUNNING), "active"),
        (latest == "failed", "failed"),
        else_="idle",
    )


class ThreadStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions

    def _threads(self, account: str | None, agent: str | None) -> Select[Session, str, int]:
        status = _status_expr().label("status")
        turns = select(func.count()).where(Turn.session_id == Session.id).correlate(Session).scalar_subquery()
        stmt = select(Session, status, turns.label("turns"))
        if account is not None:
            stmt = stmt.where(Session.account == account)
        if agent is not None:
            stmt = stmt.where(or_(Session.agent == agent,
                                  exists().where(Turn.session_id == Session.id, Turn.agent == agent)))
        return stmt

    async def list(self, account: str | None, status: str | None, agent: str | None, limit: int,
                   offset: int) -> tuple[list[ThreadRow], int]:
        stmt = self._threads(account, agent)
        if status is not None:
            stmt = stmt.where(_status_expr() == status)
        async with self._sm() as db:
            total = (await db.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
            rows = (await db.execute(stmt.order_by(Session.created_at.desc(), Session.id.desc())
                                     .limit(limit).offset(offset))).all()
        return [_thread(*row) for row in rows], int(total)

    async def get(self, thread_id: str) -> ThreadRow | None:
        async with self._sm() as db:
            row = (await db.execute(self._threads(None, None).where(Session.id == thread_id))).first()
        return _thread(*row) if row is not None else None

    async def count_by_status(self, account: str | None) -> dict[str, int]:
        status = _status_expr()
        stmt = select(status, func.count()).select_from(Session).group_by(status)
        if account is not None:
            stmt = stmt.where(Session.account == account)
        async with self._sm() as db:
            found = dict((await db.execute(stmt)).all())
        return {s: int(found.get(s, 0)) for s in THREAD_STATUSES}

    async def participants(self, thread_id: str) -> builtins.list[str]:
        agent = func.coalesce(Turn.agent, Session.agent)
        async with self._sm() as db:
            first = (await db.execute(select(Session.agent).where(Session.id == thread_id))).scalar_one_or_none()
            rows = (await db.execute(select(agent).join(Session, Session.id == Turn.session_id)
                                     .where(Turn.session_id == thread_id).group_by(agent))).scalars()
            others = sorted(set(rows) - {first})
        return ([first] if first else []) + others

    async def active_turns(self, thread_id: str) -> builtins.list[str]:
        async with self._sm() as db:
            rows = await db.execute(select(Turn.id).where(Turn.session_id == thread_id, Turn.status.in_(RUNNING)))
            return list(rows.scalars())

    async def messages(self, account: str | None, thread_id: str | None, agent: str | None, limit: int,
                       offset: int) -> tuple[builtins.list[MessageRow], int]:
        agent_expr = func.coalesce(Turn.agent, Session.agent)

        def side(outbound: int, at: InstrumentedAttribute[float]) -> Select[str, int, float]:
            stmt = select(Turn.id.label("turn_id"), literal(outbound, Integer).label("outbound"), at.label("at"))
            stmt = stmt.join(Session, Session.id == Turn.session_id)
            if outbound:
                stmt = stmt.where(Turn.status.not_in(RUNNING))
            if account is not None:
                stmt = stmt.where(Session.account == account)
            if thread_id is not None:
                stmt = stmt.where(Turn.session_id == thread_id)
            if agent is not None:
                stmt = stmt.where(agent_expr == agent)
            return stmt

        both = union_all(side(0, Turn.created_at), side(1, Turn.updated_at)).subquery()
        async with self._sm() as db:
            total = (await db.execute(select(func.count()).select_from(both))).scalar_one()
            page = (await db.execute(select(both.c.turn_id, both.c.outbound, both.c.at)
                                     .order_by(both.c.at, both.c.outbound, both.c.turn_id)
                                     .limit(limit).offset(offset))).all()
            ids = {row.turn_id for row in page}
            turns = {}
            if ids:
                found = await db.execute(select(Turn, Session.account, Session.agent)
                                         .join(Session, Session.id == Turn.session_id).where(Turn.id.in_(ids)))
                turns = {t.id: (t, acc, ag) for t, acc, ag in found.all()}
        out = []
        for row in page:
            turn, acc, session_agent = turns[row.turn_id]
            out.append(MessageRow(turn.id, turn.session_id, acc, turn.agent or session_agent, bool(row.outbound),
                                  float(row.at), turn.status, turn.request or {}, turn.snapshot or {}))
        return out, int(total)

    async def thread_counts(self, account: str | None, agents: Sequence[str]) -> dict[str, int]:
        """Threads each agent took part in (for the agents listing)."""
        out = {}
        for name in agents:
            _, out[name] = await self.list(account, None, name, 1, 0)
        return out


def _thread(session: Session, status: str, turns: int) -> ThreadRow:
    return ThreadRow(session.id, session.account, session.agent, session.model, status, int(turns or 0),
                     session.max_cost_usd, session.spent_usd, session.created_at, session.updated_at)
