"""Turns (responses) and their event logs: create, append, read, claim with a lease."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from ..events.types import StoredEvent
from .notify import EventNotifier
from .tables import EventRow, Session, Turn


class DuplicateIdempotencyKey(Exception):
    pass


class TurnStore:
    """The narrow protocol the runtime needs from the database for turns and events."""

    def __init__(self, sessions: async_sessionmaker, notifier: EventNotifier | None = None) -> None:
        self._sm = sessions
        self._notifier = notifier  # PostgreSQL: wake other replicas' tails in the same transaction

    async def create(self, session: Session | None, turn: Turn, first_events: Sequence[tuple[int, str, str]]) -> None:
        """Insert a new session (when given), the turn and its first events atomically."""
        now = time.time()
        async with self._sm() as db, db.begin():
            if session is not None:
                db.add(session)
            db.add(turn)
            await db.flush()
            db.add_all(
                EventRow(response_id=turn.id, seq=seq, type=type_, data=data, created_at=now)
                for seq, type_, data in first_events
            )
            try:
                await db.flush()
            except IntegrityError as exc:  # the (account, idempotency_key) pair already exists
                raise DuplicateIdempotencyKey(turn.idempotency_key) from exc

    async def get(self, turn_id: str) -> Turn | None:
        async with self._sm() as db:
            return await db.get(Turn, turn_id)

    async def by_idempotency_key(self, account: str, key: str) -> Turn | None:
        async with self._sm() as db:
            result = await db.execute(select(Turn).where(Turn.account == account, Turn.idempotency_key == key))
            return result.scalar_one_or_none()

    async def latest_for_session(self, session_id: str) -> Turn | None:
        async with self._sm() as db:
            result = await db.execute(
                select(Turn).where(Turn.session_id == session_id).order_by(Turn.created_at.desc()).limit(1)
            )
            return result.scalar_one_or_none()

    async def list_for_account(self, account: str, limit: int, before: Turn | None = None) -> list[Turn]:
        """The account's turns, newest first (ties broken by id), strictly older than `before`."""
        async with self._sm() as db:
            stmt = select(Turn).where(Turn.account == account)
            if before is not None:
                stmt = stmt.where(or_(Turn.created_at < before.created_at,
                                      and_(Turn.created_at == before.created_at, Turn.id < before.id)))
            stmt = stmt.order_by(Turn.created_at.desc(), Turn.id.desc()).limit(limit)
            return list((await db.execute(stmt)).scalars())

    async def append(
        self, turn_id: str, events: Sequence[tuple[int, str, str]], snapshot: dict[str, Any], status: str
    ) -> None:
        """Append events and store the projection they lead to, in one transaction."""
        if not events:
            return
        now = time.time()
        async with self._sm() as db, db.begin():
            db.add_all(
                EventRow(response_id=turn_id, seq=seq, type=type_, data=data, created_at=now)
                for seq, type_, data in events
            )
            await db.execute(
                update(Turn)
                .where(Turn.id == turn_id)
                .values(snapshot=snapshot, status=status, last_seq=events[-1][0], updated_at=now)
            )
            if self._notifier is not None:
                await self._notifier.notify(db, turn_id, events[-1][0])

    async def read(self, turn_id: str, after_seq: int = -1, limit: int = 1000) -> list[StoredEvent]:
        async with self._sm() as db:
            result = await db.execute(
                select(EventRow.seq, EventRow.type, EventRow.data)
                .where(EventRow.response_id == turn_id, EventRow.seq > after_seq)
                .order_by(EventRow.seq)
                .limit(limit)
            )
            return [StoredEvent(*row) for row in result.all()]

    async def claim(self, turn_id: str, owner: str, lease_seconds: float) -> bool:
        """Take a queued turn for `owner` and mark it in progress; True when taken."""
        now = time.time()
        async with self._sm() as db, db.begin():
            result = await db.execute(
                update(Turn)
                .where(Turn.id == turn_id, Turn.status == "queued")
                .values(lease_owner=owner, lease_expires_at=now + lease_seconds, status="in_progress", updated_at=now)
            )
            return result.rowcount == 1

    async def release(self, turn_id: str) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(update(Turn).where(Turn.id == turn_id).values(lease_owner=None, lease_expires_at=None))

    async def request_cancel(self, turn_id: str) -> None:
        async with self._sm() as db, db.begin():
            await db.execute(update(Turn).where(Turn.id == turn_id).values(cancel_requested=True))

    async def transition(self, turn_id: str, from_statuses: Sequence[str], to_status: str, **values: Any) -> bool:
        """Move the turn to `to_status` only if it is in one of `from_statuses`: the
        compare-and-set every status change outside the running worker goes through."""
        async with self._sm() as db, db.begin():
            result = await db.execute(
                update(Turn)
                .where(Turn.id == turn_id, Turn.status.in_(tuple(from_statuses)))
                .values(status=to_status, updated_at=time.time(), **values)
            )
            return result.rowcount == 1

    async def renew_many(self, turn_ids: Sequence[str], owner: str, lease_seconds: float) -> set[str]:
        """Extend this process's leases; returns the ids whose cancellation was requested."""
        if not turn_ids:
            return set()
        async with self._sm() as db, db.begin():
            await db.execute(
                update(Turn)
                .where(Turn.id.in_(tuple(turn_ids)), Turn.lease_owner == owner)
                .values(lease_expires_at=time.time() + lease_seconds)
            )
            result = await db.execute(select(Turn.id).where(Turn.id.in_(tuple(turn_ids)), Turn.cancel_requested.is_(True)))
            return set(result.scalars())

    async def orphaned(self, now: float, include_unleased: bool) -> list[Turn]:
        """Turns left queued or in progress by a process that is gone.

        `include_unleased` is for start-up of the single-process (SQLite) deployment:
        every unfinished turn belongs to the previous process.
        """
        async with self._sm() as db:
            stmt = select(Turn).where(Turn.status.in_(("queued", "in_progress")))
            if not include_unleased:
                stmt = stmt.where(Turn.lease_expires_at.is_not(None), Turn.lease_expires_at < now)
            return list((await db.execute(stmt)).scalars())

    async def delete(self, turn_id: str) -> bool:
        """Remove a turn and its event log in one transaction; the session goes with its
        last turn. True when something was removed."""
        async with self._sm() as db, db.begin():
            turn = await db.get(Turn, turn_id)
            if turn is None:
                return False
            await db.execute(delete(EventRow).where(EventRow.response_id == turn_id))
            await db.execute(delete(Turn).where(Turn.id == turn_id))
            left = (await db.execute(select(func.count()).select_from(Turn)
                                     .where(Turn.session_id == turn.session_id))).scalar_one()
            if not left:
                await db.execute(delete(Session).where(Session.id == turn.session_id))
            return True

    async def active_for_session(self, session_id: str) -> Turn | None:
        async with self._sm() as db:
            result = await db.execute(
                select(Turn).where(Turn.session_id == session_id, Turn.status.in_(("queued", "in_progress")))
            )
            return result.scalars().first()
