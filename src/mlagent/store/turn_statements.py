"""The turn store's statements, built once (store/turns.py): Core on a connection, no ORM
unit of work (each ORM round trip cost ~5x the driver's own time)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, cast

from sqlalchemy import ARRAY, Select, String, Table, bindparam, func, insert, select, update

from .records import ACTIVE, PAUSED, SessionRecord, TurnRecord
from .tables import EventRow, Session, Turn

TURNS = cast(Table, Turn.__table__)
SESSIONS = cast(Table, Session.__table__)
TURN_KEYS = tuple(TURNS.c.keys())
SESSION_KEYS = tuple(SESSIONS.c.keys())
INSERT_EVENTS = insert(cast(Table, EventRow.__table__))
INSERT_TURN = insert(TURNS)
INSERT_SESSION = insert(SESSIONS)
BY_KEY = select(*TURNS.c).where(TURNS.c.account == bindparam("account"), TURNS.c.idempotency_key == bindparam("key"))
LOCK_SESSION = select(SESSIONS.c.closed).where(SESSIONS.c.id == bindparam("session_id")).with_for_update()
UNFINISHED = select(*TURNS.c).where(TURNS.c.session_id == bindparam("session_id"),
                                      TURNS.c.status.in_((*ACTIVE, PAUSED)))
# Many turns' log ends: one array parameter on PostgreSQL (one prepared statement whatever
# the count), an expanding IN elsewhere.
IDS_PER_STATEMENT = 5000
LAST_SEQS_ANY = select(TURNS.c.id, TURNS.c.last_seq).where(
    TURNS.c.id == func.any(bindparam("ids", type_=ARRAY(String))))
LAST_SEQS_IN = select(TURNS.c.id, TURNS.c.last_seq).where(TURNS.c.id.in_(bindparam("ids", expanding=True)))
GET_SESSION = select(*SESSIONS.c).where(SESSIONS.c.id == bindparam("session_id"))
GET_TURN = select(*TURNS.c).where(TURNS.c.id == bindparam("turn_id"))
ACCOUNT_OF = select(TURNS.c.account).where(TURNS.c.id == bindparam("turn_id"))
SNAPSHOT = select(TURNS.c.account, TURNS.c.snapshot).where(TURNS.c.id == bindparam("turn_id"))
LOG_END = select(TURNS.c.status, TURNS.c.last_seq).where(TURNS.c.id == bindparam("turn_id"))
READ_EVENTS = (select(EventRow.seq, EventRow.type, EventRow.data)
                .where(EventRow.response_id == bindparam("turn_id"), EventRow.seq > bindparam("after"))
                .order_by(EventRow.seq).limit(bindparam("limit")))
CLAIM = (update(TURNS).where(TURNS.c.id == bindparam("turn_id"), TURNS.c.status == "queued")
          .values(lease_owner=bindparam("owner"), lease_expires_at=bindparam("expires"), status="in_progress",
                  updated_at=bindparam("now"))
          .returning(*TURNS.c))
# A group commit's projections, one executemany (a missing turn fails its events' foreign key).
APPEND_MANY = (update(TURNS).where(TURNS.c.id == bindparam("b_id"))
                .values(snapshot=bindparam("b_snapshot"), status=bindparam("b_status"),
                        last_seq=bindparam("b_last_seq"), updated_at=bindparam("b_now")))
RELEASE = update(TURNS).where(TURNS.c.id == bindparam("turn_id")).values(lease_owner=None, lease_expires_at=None)


def chain_point() -> Select[Any]:
    """The turn, its session and the session's latest turn, as one row (in that column order)."""
    turn, latest, newer = TURNS.alias("turn"), TURNS.alias("latest"), TURNS.alias("newer")
    latest_id = (select(newer.c.id).where(newer.c.session_id == SESSIONS.c.id).order_by(newer.c.created_at.desc())
                 .limit(1).correlate(SESSIONS).scalar_subquery())
    return (select(*turn.c, *SESSIONS.c, *latest.c).join_from(turn, SESSIONS, SESSIONS.c.id == turn.c.session_id)
            .join(latest, latest.c.id == latest_id).where(turn.c.id == bindparam("turn_id")))


CHAIN_POINT = chain_point()
# Records are built positionally from rows in table column order: the field names must be
# the column names, in that order (checked here, once, rather than per row).
if (tuple(f.name for f in fields(TurnRecord)) != TURN_KEYS
        or tuple(f.name for f in fields(SessionRecord)) != SESSION_KEYS):  # pragma: no cover - a schema edit
    raise RuntimeError("store/records.py fields differ from the turns / sessions columns")
