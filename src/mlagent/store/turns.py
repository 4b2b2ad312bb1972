"""Turns (responses) and their event logs: create, append, read, claim with a lease.

Every step that decides between racing requests is one database transaction here, so it
holds across replicas on PostgreSQL as well as on SQLite (docs/architecture.md, "Races"):
a follow-up takes an idle session (`create_followup`), an idempotent create has one winner
(`create`), the worker claims a queued turn (`claim`), a cancel ends a queued or paused turn
(`append` with `only_if`) or flags a running one (`request_cancel`).

It implements `protocols.Turns` and returns `records.TurnRecord` values; every statement is
SQLAlchemy Core on a connection (no ORM unit of work), records built from the rows read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from ..events.types import StoredEvent
from .db import rowcount
from .direct import Direct
from .group_append import Append, GroupAppender
from .notify import EventNotifier, notify_deleted
from .protocols import DuplicateIdempotencyKey, EventRows, SessionBusy, SessionClosed
from .records import ACTIVE, PAUSED, SessionRecord, TurnRecord, paused_on_approval
from .tables import EventRow, Session, Turn
from .turn_statements import (
    ACCOUNT_OF,
    APPEND_MANY,
    BY_KEY,
    CHAIN_POINT,
    CLAIM,
    GET_SESSION,
    GET_TURN,
    IDS_PER_STATEMENT,
    INSERT_EVENTS,
    INSERT_SESSION,
    INSERT_TURN,
    LAST_SEQS_ANY,
    LAST_SEQS_IN,
    LOCK_SESSION,
    LOG_END,
    READ_EVENTS,
    RELEASE,
    SESSION_KEYS,
    SESSIONS,
    SNAPSHOT,
    TURN_KEYS,
    TURNS,
    UNFINISHED,
)

__all__ = ["DuplicateIdempotencyKey", "SessionBusy", "SessionClosed", "TurnStore", "paused_on_approval"]

# The hot statements, built once: Core on a connection, no ORM unit of work (each ORM
# round trip cost ~5x the driver's own time).
class _KeyTaken(Exception):
    pass


@dataclass(frozen=True)
class _NewTurn:
    """A create waiting for the next grouped transaction."""

    session: SessionRecord | None
    turn: TurnRecord
    first_events: EventRows


def _event_rows(turn_id: str, events: Sequence[tuple[int, str, str]], now: float | None = None) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    return [{"response_id": turn_id, "seq": seq, "type": type_, "data": data, "created_at": now}
            for seq, type_, data in events]


def _turn(row: Row[Any] | Sequence[Any]) -> TurnRecord:
    """The record of a row holding the turn's columns in table order."""
    return TurnRecord(*row)


def _session(row: Row[Any] | Sequence[Any]) -> SessionRecord:
    return SessionRecord(*row)


def _columns(record: TurnRecord | SessionRecord, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: getattr(record, key) for key in keys}


class TurnStore:
    """Turns and their event logs on SQLite or PostgreSQL (`protocols.Turns`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], notifier: EventNotifier | None = None) -> None:
        self._sm = sessions
        self._engine = sessions.kw["bind"]
        self._notifier = notifier  # PostgreSQL: wake other replicas' tails in the same transaction
        # PostgreSQL: other replicas keep finished responses in memory until told of their delete.
        self._announce_deletes = self._engine.dialect.name == "postgresql"
        # Reads of one statement each (every `_reads.connect()` below: keep them so) skip the
        # BEGIN and ROLLBACK around them on PostgreSQL, two of a cache-missing GET's six round
        # trips (docs/performance.md): one SELECT is its own consistent snapshot. SQLite's one
        # connection keeps its default.
        self._reads = (self._engine.execution_options(isolation_level="AUTOCOMMIT")
                       if self._announce_deletes else self._engine)
        self._group = GroupAppender(self._append_many, self._append_alone)
        # New turns that arrive while one create is being written go together in the next
        # transaction (a burst of 2,000 creates is a few dozen transactions, not 2,000 checkouts).
        self._creates = GroupAppender(self._create_many, self._create_alone, name="turns:group-create")
        # SQLite: the hot statements straight on the connection (store/sqlite_inline.py)
        self._direct = Direct.of(self._engine)
        if self._direct is not None:
            d = self._direct
            self._d_append = d.compile(APPEND_MANY)
            self._d_events = d.compile(INSERT_EVENTS, ("response_id", "seq", "type", "data", "created_at"))
            self._d_get, self._d_snapshot, self._d_log_end = d.compile(GET_TURN), d.compile(SNAPSHOT), d.compile(LOG_END)
            self._d_claim, self._d_session = d.compile(CLAIM), d.compile(GET_SESSION)

    async def create(self, session: SessionRecord | None, turn: TurnRecord, first_events: EventRows) -> None:
        """Insert a new session (when given), the turn and its first events atomically,
        grouped with concurrent creates in one transaction. If that shared transaction fails,
        each create is written alone, so only the one at fault fails.

        Raises `DuplicateIdempotencyKey` with the winner when a concurrent create with the
        same key committed first (the unique constraint decides; PostgreSQL makes the loser
        wait for the winner's commit, so the winner is readable here)."""
        await self._creates.append(_NewTurn(session, turn, first_events))

    async def _create_many(self, items: Sequence[_NewTurn]) -> list[bool]:
        if len(items) == 1:
            return [await self._create_alone(items[0])]
        async with self._engine.begin() as conn:
            sessions = [_columns(i.session, SESSION_KEYS) for i in items if i.session is not None]
            if sessions:
                await conn.execute(INSERT_SESSION, sessions)
            await conn.execute(INSERT_TURN, [_columns(i.turn, TURN_KEYS) for i in items])
            events = [row for i in items for row in _event_rows(i.turn.id, i.first_events)]
            if events:
                await conn.execute(INSERT_EVENTS, events)
        return [True] * len(items)

    async def _create_alone(self, item: _NewTurn) -> bool:
        session, turn, first_events = item.session, item.turn, item.first_events
        account, key = turn.account, turn.idempotency_key
        try:
            async with self._engine.begin() as conn:
                if session is not None:
                    await conn.execute(INSERT_SESSION, _columns(session, SESSION_KEYS))
                await self._add_turn(conn, turn, first_events)
        except IntegrityError:
            existing = await self._by_key(account, key)
            if existing is None:
                raise
            raise DuplicateIdempotencyKey(existing) from None
        return True

    async def create_followup(self, session_id: str, turn: TurnRecord, first_events: EventRows,
                              **session_values: Any) -> None:
        """Add `turn` to an existing session only if the session is idle, in one
        transaction: the session row is locked (`FOR UPDATE` on PostgreSQL; SQLite runs one
        transaction at a time), then its turns are checked, then the turn is inserted, so
        of concurrent follow-ups exactly one wins. Raises `SessionClosed`, `SessionBusy`
        or `DuplicateIdempotencyKey` (a same-key create already took the session)."""
        account, key = turn.account, turn.idempotency_key
        try:
            async with self._engine.begin() as conn:
                closed = (await conn.execute(LOCK_SESSION, {"session_id": session_id})).scalar_one()
                if closed:
                    raise SessionClosed(session_id)
                if await self._by_key(account, key, conn) is not None:
                    raise _KeyTaken  # answered below, outside the rolled-back transaction
                for row in await conn.execute(UNFINISHED, {"session_id": session_id}):
                    other = _turn(row)
                    if other.status in ACTIVE or paused_on_approval(other):
                        raise SessionBusy(other.id, paused=other.status == PAUSED)
                if session_values:
                    await conn.execute(update(SESSIONS).where(SESSIONS.c.id == session_id)
                                       .values(updated_at=time.time(), **session_values))
                await self._add_turn(conn, turn, first_events)
        except (IntegrityError, _KeyTaken):
            existing = await self._by_key(account, key)
            if existing is None:
                raise
            raise DuplicateIdempotencyKey(existing) from None

    @staticmethod
    async def _add_turn(conn: AsyncConnection, turn: TurnRecord, first_events: EventRows) -> None:
        await conn.execute(INSERT_TURN, _columns(turn, TURN_KEYS))  # before its events: they refer to it
        if first_events:
            await conn.execute(INSERT_EVENTS, _event_rows(turn.id, first_events))

    async def _by_key(self, account: str, key: str | None, conn: AsyncConnection | None = None) -> TurnRecord | None:
        if not key:
            return None
        if conn is None:
            return await self.by_idempotency_key(account, key)
        row = (await conn.execute(BY_KEY, {"account": account, "key": key})).first()
        return _turn(row) if row is not None else None

    async def get(self, turn_id: str) -> TurnRecord | None:
        if self._direct is not None:
            async with self._direct.connection() as direct:
                found = await direct.first(self._d_get, {"turn_id": turn_id})
            return _turn(found) if found is not None else None
        async with self._reads.connect() as conn:
            row = (await conn.execute(GET_TURN, {"turn_id": turn_id})).first()
        return _turn(row) if row is not None else None

    async def account_of(self, turn_id: str) -> str | None:
        """The account owning the turn: a stream's owner check reads one short column,
        not the turn's JSON documents (2,000 tails opening at once decoded 4,000 of them)."""
        async with self._reads.connect() as conn:
            account: str | None = (await conn.execute(ACCOUNT_OF, {"turn_id": turn_id})).scalar_one_or_none()
        return account

    async def snapshot(self, turn_id: str) -> tuple[str, dict[str, Any]] | None:
        """(account, snapshot) of the turn: what reading a response needs, and only that."""
        if self._direct is not None:
            async with self._direct.connection() as direct:
                found = await direct.first(self._d_snapshot, {"turn_id": turn_id})
            return (found[0], found[1]) if found is not None else None
        async with self._reads.connect() as conn:
            row = (await conn.execute(SNAPSHOT, {"turn_id": turn_id})).first()
        return (row[0], row[1]) if row is not None else None

    async def chain_point(self, turn_id: str) -> tuple[TurnRecord, SessionRecord, TurnRecord] | None:
        """A follow-up's starting point in one query: the turn, its session and the
        session's latest turn (whose client tool calls the follow-up must answer)."""
        async with self._reads.connect() as conn:
            row = (await conn.execute(CHAIN_POINT, {"turn_id": turn_id})).first()
        if row is None:
            return None
        t, s = len(TURN_KEYS), len(SESSION_KEYS)
        return _turn(row[:t]), _session(row[t:t + s]), _turn(row[t + s:])

    async def require(self, turn_id: str) -> TurnRecord:
        """A turn that must exist (one this process has seen); LookupError if not."""
        turn = await self.get(turn_id)
        if turn is None:
            raise LookupError(f"turn {turn_id} does not exist")
        return turn

    async def by_idempotency_key(self, account: str, key: str) -> TurnRecord | None:
        async with self._reads.connect() as conn:
            row = (await conn.execute(BY_KEY, {"account": account, "key": key})).first()
        return _turn(row) if row is not None else None

    async def latest_for_session(self, session_id: str) -> TurnRecord | None:
        t = TURNS.c
        stmt = select(*TURNS.c).where(t.session_id == session_id).order_by(t.created_at.desc()).limit(1)
        async with self._reads.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _turn(row) if row is not None else None

    async def list_for_account(self, account: str, limit: int, before: TurnRecord | None = None) -> list[TurnRecord]:
        """The account's turns, newest first (ties broken by id), strictly older than `before`."""
        t = TURNS.c
        stmt = select(*TURNS.c).where(t.account == account)
        if before is not None:
            stmt = stmt.where(or_(t.created_at < before.created_at,
                                  and_(t.created_at == before.created_at, t.id < before.id)))
        stmt = stmt.order_by(t.created_at.desc(), t.id.desc()).limit(limit)
        async with self._reads.connect() as conn:
            return [_turn(row) for row in await conn.execute(stmt)]

    async def append(
        self, turn_id: str, events: EventRows, snapshot: dict[str, Any], status: str,
        only_if: tuple[str, int] | None = None, **values: Any,
    ) -> bool:
        """Append events and store the projection they lead to, in one transaction.

        `only_if=(status, last_seq)` makes it a compare-and-set: nothing is written (False)
        unless the turn is still in that status at that point of its log. That is how a
        turn is ended from outside its worker (cancel of a queued or paused turn) without
        racing the worker's claim."""
        if not events:
            return True
        if only_if is None and not values:  # a live turn's batch: group commit with the other turns'
            return await self._group.append(Append(turn_id, events, snapshot, status))
        return await self._append(turn_id, events, snapshot, status, only_if, **values)

    async def _append(
        self, turn_id: str, events: EventRows, snapshot: dict[str, Any], status: str,
        only_if: tuple[str, int] | None = None, **values: Any,
    ) -> bool:
        now = time.time()
        if only_if is None and not values:  # a live turn's own batch: the statement built once
            row = {"b_id": turn_id, "b_snapshot": snapshot, "b_status": status, "b_last_seq": events[-1][0], "b_now": now}
            if self._direct is not None:
                async with self._direct.connection(commit=True) as direct:
                    if await direct.execute(self._d_append, row) != 1:
                        return False  # the turn is gone: nothing was changed
                    await direct.executemany(self._d_events, _event_rows(turn_id, events, now))
                return True
            projection = (APPEND_MANY, row)
        else:
            stmt = update(TURNS).where(TURNS.c.id == turn_id)
            if only_if is not None:
                stmt = stmt.where(TURNS.c.status == only_if[0], TURNS.c.last_seq == only_if[1])
            projection = (stmt.values(snapshot=snapshot, status=status, last_seq=events[-1][0],
                                                  updated_at=now, **values), {})
        async with self._engine.begin() as conn:
            result = await conn.execute(*projection)
            if result.rowcount != 1:
                return False  # the turn moved: nothing was changed
            await conn.execute(INSERT_EVENTS, _event_rows(turn_id, events, now))
            if self._notifier is not None:
                await self._notifier.notify(conn, turn_id, events[-1][0])
        return True

    async def _append_alone(self, item: Append) -> bool:
        return await self._append(item.turn_id, item.events, item.snapshot, item.status)

    async def _append_many(self, items: Sequence[Append]) -> list[bool]:
        """Several turns' batches in one transaction: the projections as one executemany, the
        events as another. A turn that is gone fails the events' foreign key, so the whole
        transaction (retried one by one by `GroupAppender`, where its append returns False)."""
        if len(items) == 1:
            return [await self._append_alone(items[0])]
        now = time.time()
        if self._direct is not None:  # SQLite has no notifier
            async with self._direct.connection(commit=True) as direct:
                await direct.executemany(self._d_append, [
                    {"b_id": i.turn_id, "b_snapshot": i.snapshot, "b_status": i.status, "b_last_seq": i.events[-1][0],
                     "b_now": now} for i in items])
                await direct.executemany(self._d_events, [row for i in items
                                                          for row in _event_rows(i.turn_id, i.events, now)])
            return [True] * len(items)
        async with self._engine.begin() as conn:
            await conn.execute(APPEND_MANY, [{"b_id": i.turn_id, "b_snapshot": i.snapshot, "b_status": i.status,
                                               "b_last_seq": i.events[-1][0], "b_now": now} for i in items])
            await conn.execute(INSERT_EVENTS, [row for i in items for row in _event_rows(i.turn_id, i.events, now)])
            if self._notifier is not None:
                await self._notifier.notify_many(conn, [(i.turn_id, i.events[-1][0]) for i in items])
        return [True] * len(items)

    async def log_end(self, turn_id: str) -> tuple[str, int] | None:
        """(status, last seq) of the turn: where its log stands."""
        if self._direct is not None:
            async with self._direct.connection() as direct:
                found = await direct.first(self._d_log_end, {"turn_id": turn_id})
            return (found[0], found[1]) if found is not None else None
        async with self._reads.connect() as conn:
            row = (await conn.execute(LOG_END, {"turn_id": turn_id})).first()
        return (row[0], row[1]) if row is not None else None

    async def last_seqs(self, turn_ids: Sequence[str]) -> dict[str, int]:
        """The last seq of each existing turn's log among `turn_ids`, in one checkout and
        one statement per `IDS_PER_STATEMENT` (the tails' shared re-read, events/bus.py)."""
        ends: dict[str, int] = {}
        pg = self._engine.dialect.name == "postgresql"
        async with self._engine.connect() as conn:
            for i in range(0, len(turn_ids), IDS_PER_STATEMENT):
                chunk = list(turn_ids[i:i + IDS_PER_STATEMENT])
                stmt, params = (LAST_SEQS_ANY, {"ids": chunk}) if pg else (LAST_SEQS_IN, {"ids": chunk})
                ends.update((row[0], row[1]) for row in await conn.execute(stmt, params))
        return ends

    async def read(self, turn_id: str, after_seq: int = -1, limit: int = 1000) -> list[StoredEvent]:
        async with self._reads.connect() as conn:
            result = await conn.execute(READ_EVENTS, {"turn_id": turn_id, "after": after_seq, "limit": limit})
            return [StoredEvent(*row) for row in result.all()]

    async def claim(self, turn_id: str, owner: str, lease_seconds: float) -> TurnRecord | None:
        """Take a queued turn for `owner`, mark it in progress and return it (None: not
        taken). A compare-and-set on the status: a cancel that ended the queued turn first
        wins. The claimed row comes back with the update (`RETURNING`): no second read."""
        now = time.time()
        values = {"turn_id": turn_id, "owner": owner, "expires": now + lease_seconds, "now": now}
        if self._direct is not None:
            async with self._direct.connection(commit=True) as direct:
                found = await direct.first(self._d_claim, values)
            return _turn(found) if found is not None else None
        async with self._engine.begin() as conn:
            row = (await conn.execute(CLAIM, values)).first()
        return _turn(row) if row is not None else None

    async def claim_with_session(self, turn_id: str, owner: str,
                                 lease_seconds: float) -> tuple[TurnRecord, SessionRecord] | None:
        """`claim`, and the turn's session read in the same transaction: a worker's start-up
        in one checkout of the pool rather than two."""
        now = time.time()
        values = {"turn_id": turn_id, "owner": owner, "expires": now + lease_seconds, "now": now}
        if self._direct is not None:
            async with self._direct.connection(commit=True) as direct:
                found = await direct.first(self._d_claim, values)
                if found is None:
                    return None
                turn = _turn(found)
                row = await direct.first(self._d_session, {"session_id": turn.session_id})
            if row is None:  # pragma: no cover - a turn's session row outlives it (foreign key)
                raise LookupError(f"turn {turn_id} has no session")
            return turn, _session(row)
        async with self._engine.begin() as conn:
            claimed = (await conn.execute(CLAIM, values)).first()
            if claimed is None:
                return None
            turn = _turn(claimed)
            session = (await conn.execute(GET_SESSION, {"session_id": turn.session_id})).one()
        return turn, _session(session)

    async def release(self, turn_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(RELEASE, {"turn_id": turn_id})

    async def request_cancel(self, turn_id: str) -> bool:
        """Flag a running turn for its worker (in whichever process holds it); False when
        the turn is not in progress any more."""
        async with self._sm() as db, db.begin():
            result = await db.execute(update(Turn).where(Turn.id == turn_id, Turn.status == "in_progress")
                                      .values(cancel_requested=True))
            return rowcount(result) == 1

    async def transition(self, turn_id: str, from_statuses: Sequence[str], to_status: str, **values: Any) -> bool:
        """Move the turn to `to_status` only if it is in one of `from_statuses`: the
        compare-and-set every status change outside the running worker goes through."""
        async with self._sm() as db, db.begin():
            result = await db.execute(
                update(Turn)
                .where(Turn.id == turn_id, Turn.status.in_(tuple(from_statuses)))
                .values(status=to_status, updated_at=time.time(), **values)
            )
            return rowcount(result) == 1

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

    async def orphaned(self, now: float, include_unleased: bool) -> list[TurnRecord]:
        """Turns left queued or in progress by a process that is gone.

        `include_unleased` is for start-up of the single-process (SQLite) deployment:
        every unfinished turn belongs to the previous process.
        """
        t = TURNS.c
        stmt = select(*TURNS.c).where(t.status.in_(ACTIVE))
        if not include_unleased:
            stmt = stmt.where(t.lease_expires_at.is_not(None), t.lease_expires_at < now)
        async with self._reads.connect() as conn:
            return [_turn(row) for row in await conn.execute(stmt)]

    async def delete(self, turn_id: str) -> bool:
        """Remove a turn and its event log in one transaction; the session goes with its
        last turn. True when something was removed. On PostgreSQL the transaction also
        NOTIFYs every replica of the delete (store/notify.py), sent only if it commits."""
        async with self._sm() as db, db.begin():
            session_id = (await db.execute(select(Turn.session_id).where(Turn.id == turn_id))).scalar_one_or_none()
            if session_id is None:
                return False
            await db.execute(delete(EventRow).where(EventRow.response_id == turn_id))
            await db.execute(delete(Turn).where(Turn.id == turn_id))
            left = (await db.execute(select(func.count()).select_from(Turn)
                                     .where(Turn.session_id == session_id))).scalar_one()
            if not left:
                await db.execute(delete(Session).where(Session.id == session_id))
            if self._announce_deletes:
                await notify_deleted(db, turn_id)
            return True

    async def active_for_session(self, session_id: str) -> TurnRecord | None:
        t = TURNS.c
        async with self._reads.connect() as conn:
            row = (await conn.execute(select(*TURNS.c).where(t.session_id == session_id, t.status.in_(ACTIVE)))).first()
        return _turn(row) if row is not None else None
