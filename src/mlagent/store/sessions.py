"""Sessions (conversation state shared by chained responses) and accounts.

`SessionStore` implements `protocols.Sessions`, `AccountStore` `protocols.Accounts`; what
they return are `records.SessionRecord` / `records.AccountRecord` values."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .direct import Direct
from .records import AccountRecord, SessionRecord
from .tables import Account, Session, Turn

_SESSIONS = cast(Table, Session.__table__)
_TURNS = cast(Table, Turn.__table__)
_GET_SESSION = select(*_SESSIONS.c).where(_SESSIONS.c.id == bindparam("session_id"))
_SAVE_MESSAGES = (update(_SESSIONS).where(_SESSIONS.c.id == bindparam("session_id"))
                  .values(messages=bindparam("history", type_=_SESSIONS.c.messages.type), updated_at=bindparam("now")))
_SAVE_RUNNING_MESSAGES = _SAVE_MESSAGES.where(
    select(_TURNS.c.id).where(_TURNS.c.id == bindparam("turn_id"), _TURNS.c.session_id == bindparam("session_id"),
                              _TURNS.c.status == "in_progress").exists())


class SessionStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions
        self._engine = sessions.kw["bind"]
        # SQLite: a turn's session read and history saves straight on the connection
        self._direct = Direct.of(self._engine)
        if self._direct is not None:
            self._d_get = self._direct.compile(_GET_SESSION)
            self._d_save, self._d_save_running = self._direct.compile(_SAVE_MESSAGES), self._direct.compile(
                _SAVE_RUNNING_MESSAGES)

    async def get(self, session_id: str) -> SessionRecord | None:
        if self._direct is not None:
            async with self._direct.connection() as direct:
                found = await direct.first(self._d_get, {"session_id": session_id})
            return SessionRecord(*found) if found is not None else None
        async with self._sm() as db:
            row = (await db.execute(_GET_SESSION, {"session_id": session_id})).first()
        return SessionRecord(**row._mapping) if row is not None else None

    async def require(self, session_id: str) -> SessionRecord:
        """A session that must exist (a turn's: the foreign key keeps it); LookupError if not."""
        session = await self.get(session_id)
        if session is None:
            raise LookupError(f"session {session_id} does not exist")
        return session

    async def save_messages(self, session_id: str, messages: list[dict[str, Any]], turn_id: str | None = None) -> bool:
        """Replace the history. With `turn_id` (the worker's writes) only while that turn is
        the session's running turn: a worker that lost its turn (its lease expired, it was
        ended from outside) cannot overwrite the history a later turn is building.
        A Core statement built once, on a connection (a turn saves its history twice)."""
        params: dict[str, Any] = {"session_id": session_id, "history": messages, "now": time.time()}
        stmt = _SAVE_MESSAGES
        if turn_id is not None:
            stmt, params["turn_id"] = _SAVE_RUNNING_MESSAGES, turn_id
        if self._direct is not None:
            async with self._direct.connection(commit=True) as direct:
                return await direct.execute(self._d_save if turn_id is None else self._d_save_running, params) == 1
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt, params)
            return bool(result.rowcount == 1)

    async def update(self, session_id: str, **values: Any) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(update(Session).where(Session.id == session_id).values(updated_at=time.time(), **values))

    async def busy(self, session_ids: Sequence[str], since: float) -> set[str]:
        """Of `session_ids`, those active since `since` or with a queued / running turn (in
        any process): their sandbox directories are kept."""
        out: set[str] = set()
        ids = list(session_ids)
        async with self._sm() as db:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                recent = select(Session.id).where(Session.id.in_(chunk), Session.updated_at >= since)
                running = select(Turn.session_id).where(Turn.session_id.in_(chunk),
                                                        Turn.status.in_(("queued", "in_progress")))
                out.update(row[0] for row in await db.execute(recent.union(running)))
        return out


class AccountStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions

    async def seen(self, name: str, kind: str) -> None:
        """Record that `name` called the server (insert or touch)."""
        now = time.time()
        try:
            async with self._sm() as db, db.begin():
                account = await db.get(Account, name)
                if account is None:
                    db.add(Account(name=name, kind=kind, created_at=now, last_seen_at=now))
                else:
                    account.last_seen_at = now
        except IntegrityError:  # a concurrent first call inserted it
            pass

    async def list(self) -> list[AccountRecord]:
        async with self._sm() as db:
            rows = await db.execute(select(Account.name, Account.kind, Account.created_at, Account.last_seen_at)
                                    .order_by(Account.name))
            return [AccountRecord(*row) for row in rows]

    async def count(self) -> int:
        async with self._sm() as db:
            return int((await db.execute(select(func.count()).select_from(Account))).scalar_one())
