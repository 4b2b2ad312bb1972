"""Store conformance: the same checks against SQLite and PostgreSQL, through the protocols.

Modelled on LangGraph's checkpointer conformance suite: each test takes the stores only as
`store/protocols.py` types them (`Turns`, `Sessions`, `Accounts`, `Approvals`, `Pauses`,
`ModelRegistry`, `FineTunes`),
so a second implementation (or a change of SQL) must pass the same list. Every check reads
back values (records, events, flags) rather than trusting "no exception". The concurrency
cases race 20 coroutines on one store object, as the server's requests do (SQLite: its one
connection; PostgreSQL: a pool of connections, so row locks and unique keys decide).

PostgreSQL runs need MLAGENT_TEST_DATABASE_URL (a fresh database is made per run and dropped).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from mlagent.events.types import StoredEvent
from mlagent.store.approvals import ApprovalStore
from mlagent.store.db import make_engine, migrate, sessionmaker
from mlagent.store.finetune import FineTuneStore
from mlagent.store.notify import EventNotifier
from mlagent.store.pauses import PauseStore
from mlagent.store.protocols import (
    Accounts,
    Approvals,
    DuplicateError,
    DuplicateIdempotencyKey,
    FineTunes,
    ModelRegistry,
    Pauses,
    SessionBusy,
    SessionClosed,
    Sessions,
    Turns,
)
from mlagent.store.records import (
    FineTuningJobRecord,
    ModelRecord,
    SessionRecord,
    TrainingRecord,
    TurnRecord,
    UploadedFileRecord,
)
from mlagent.store.registry import RegistryStore
from mlagent.store.sessions import AccountStore, SessionStore
from mlagent.store.turns import TurnStore

from .conftest import PG_SKIP, PG_URL
from .harness import create_pg_database, drop_pg_database

pytestmark = pytest.mark.asyncio(loop_scope="module")

RACERS = 20
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]


@dataclass(frozen=True)
class Stores:
    turns: Turns
    sessions: Sessions
    accounts: Accounts
    approvals: Approvals
    pauses: Pauses
    registry: ModelRegistry
    finetunes: FineTunes


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stores]:
    pg = request.param == "postgresql"
    if pg:
        assert PG_URL is not None
        url = await asyncio.to_thread(create_pg_database, PG_URL)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('store')}/store.db"
    await migrate(url)
    engine = make_engine(url)
    sm = sessionmaker(engine)
    try:
        yield Stores(TurnStore(sm, EventNotifier("conformance") if pg else None), SessionStore(sm), AccountStore(sm),
                     ApprovalStore(sm), PauseStore(sm), RegistryStore(sm),
                     FineTuneStore(sm))
    finally:
        await engine.dispose()
        if pg:
            assert PG_URL is not None
            await asyncio.to_thread(drop_pg_database, PG_URL, url)


# -- values ---------------------------------------------------------------------------

def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def new_session(account: str | None = None, **values: Any) -> SessionRecord:
    now = time.time()
    fields: dict[str, Any] = {"id": _id("sess"), "account": account or _id("acct"), "agent": "ml-agent",
                              "model": "m", "max_cost_usd": 5.0, "spent_usd": 0.0, "messages": [], "pending": None,
                              "closed": False, "created_at": now, "updated_at": now}
    return SessionRecord(**{**fields, **values})


def new_turn(session: SessionRecord, status: str = "queued", key: str | None = None, **values: Any) -> TurnRecord:
    now = time.time()
    turn_id = _id("resp")
    fields: dict[str, Any] = {"id": turn_id, "session_id": session.id, "account": session.account, "status": status,
                              "request": {"input": "hi", "n": 1}, "snapshot": {"id": turn_id, "status": status},
                              "last_seq": 1, "cancel_requested": False, "lease_owner": "replica-a",
                              "lease_expires_at": now + 60, "idempotency_key": key, "created_at": now,
                              "updated_at": now, "agent": None}
    return TurnRecord(**{**fields, **values})


def first_events(turn: TurnRecord) -> list[tuple[int, str, str]]:
    return [(0, "response.created", json.dumps({"id": turn.id, "n": 0})),
            (1, "response.queued", json.dumps({"id": turn.id, "n": 1}))]


async def started(stores: Stores, status: str = "queued", key: str | None = None,
                  session: SessionRecord | None = None, **values: Any) -> tuple[SessionRecord, TurnRecord]:
    """A new session with one turn in `status`."""
    session = session or new_session()
    turn = new_turn(session, status, key, **values)
    await stores.turns.create(session, turn, first_events(turn))
    return session, turn


async def finish(stores: Stores, turn: TurnRecord, status: str = "completed", **snapshot: Any) -> None:
    end = await stores.turns.log_end(turn.id)
    assert end is not None
    assert await stores.turns.append(turn.id, [(end[1] + 1, f"response.{status}", "{}")],
                                     {"id": turn.id, "status": status, **snapshot}, status)


# -- turns: create, read, idempotency ------------------------------------------------

async def test_create_then_read_back_the_same_values(stores: Stores) -> None:
    session, turn = await started(stores, key=_id("key"))

    assert await stores.turns.get(turn.id) == turn
    assert await stores.turns.require(turn.id) == turn
    assert await stores.sessions.get(session.id) == session
    assert await stores.sessions.require(session.id) == session
    assert await stores.turns.read(turn.id) == [StoredEvent(seq, type_, data) for seq, type_, data in first_events(turn)]
    assert await stores.turns.read(turn.id, after_seq=0) == [StoredEvent(*first_events(turn)[1])]
    assert await stores.turns.read(turn.id, limit=1) == [StoredEvent(*first_events(turn)[0])]
    assert await stores.turns.log_end(turn.id) == ("queued", 1)
    assert await stores.turns.snapshot(turn.id) == (session.account, turn.snapshot)
    assert await stores.turns.latest_for_session(session.id) == turn


async def test_missing_rows_are_none_or_lookup_errors(stores: Stores) -> None:
    assert await stores.turns.get("resp_missing") is None
    assert await stores.turns.log_end("resp_missing") is None
    assert await stores.turns.snapshot("resp_missing") is None
    assert await stores.turns.chain_point("resp_missing") is None
    assert await stores.turns.read("resp_missing") == []
    assert await stores.sessions.get("sess_missing") is None
    with pytest.raises(LookupError):
        await stores.turns.require("resp_missing")
    with pytest.raises(LookupError):
        await stores.sessions.require("sess_missing")


async def test_records_are_frozen_values(stores: Stores) -> None:
    session, turn = await started(stores)
    read = await stores.turns.require(turn.id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.status = "completed"  # type: ignore[misc]
    assert not hasattr(read, "__dict__")  # slots: a plain value, no ORM state
    await finish(stores, turn)
    assert read.status == "queued"  # a copy: the store's later writes do not reach it


async def test_duplicate_idempotency_key_names_the_winner_and_writes_nothing(stores: Stores) -> None:
    key = _id("key")
    first_session, first = await started(stores, key=key)
    loser_session = new_session(first_session.account)
    loser = new_turn(loser_session, key=key)

    with pytest.raises(DuplicateIdempotencyKey) as raised:
        await stores.turns.create(loser_session, loser, first_events(loser))

    assert raised.value.existing == first
    assert await stores.turns.get(loser.id) is None
    assert await stores.sessions.get(loser_session.id) is None  # the whole transaction rolled back
    assert await stores.turns.by_idempotency_key(first_session.account, key) == first
    # The key is per account: another account may use it.
    _, other = await started(stores, key=key)
    assert await stores.turns.by_idempotency_key(other.account, key) == other


# -- claim, lease, cancel flag ---------------------------------------------------------

async def test_claim_takes_a_queued_turn_once(stores: Stores) -> None:
    _, turn = await started(stores)

    claimed = await stores.turns.claim(turn.id, "replica-b", 30)

    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.lease_owner) == (turn.id, "in_progress", "replica-b")
    assert claimed.lease_expires_at is not None and claimed.lease_expires_at > time.time()
    assert await stores.turns.get(turn.id) == claimed
    assert await stores.turns.claim(turn.id, "replica-c", 30) is None
    assert (await stores.turns.require(turn.id)).lease_owner == "replica-b"


async def test_release_drops_the_lease(stores: Stores) -> None:
    _, turn = await started(stores)
    assert await stores.turns.claim(turn.id, "replica-b", 30) is not None

    await stores.turns.release(turn.id)

    released = await stores.turns.require(turn.id)
    assert (released.lease_owner, released.lease_expires_at, released.status) == (None, None, "in_progress")


async def test_cancel_flag_reaches_the_lease_holder(stores: Stores) -> None:
    _, turn = await started(stores)
    _, other = await started(stores)
    assert not await stores.turns.request_cancel(turn.id)  # queued: not the worker's to see
    await stores.turns.claim(turn.id, "replica-b", 30)
    await stores.turns.claim(other.id, "replica-b", 30)

    assert await stores.turns.request_cancel(turn.id)

    before = (await stores.turns.require(turn.id)).lease_expires_at
    assert await stores.turns.renew_many([turn.id, other.id], "replica-b", 600) == {turn.id}
    renewed = await stores.turns.require(turn.id)
    assert renewed.cancel_requested and not (await stores.turns.require(other.id)).cancel_requested
    assert before is not None and renewed.lease_expires_at is not None and renewed.lease_expires_at > before + 100
    # Another replica's renewal does not touch this one's leases.
    await stores.turns.renew_many([turn.id], "replica-z", 6000)
    assert (await stores.turns.require(turn.id)).lease_expires_at == renewed.lease_expires_at
    await finish(stores, turn, "cancelled")
    assert not await stores.turns.request_cancel(turn.id)


async def test_orphaned_are_the_unfinished_turns_with_expired_leases(stores: Stores) -> None:
    now = time.time()
    _, expired = await started(stores, lease_expires_at=now - 5)
    _, live = await started(stores, lease_expires_at=now + 600)
    _, unleased = await started(stores, lease_owner=None, lease_expires_at=None)
    _, done = await started(stores, lease_expires_at=now - 5)
    await finish(stores, done)

    orphaned = {t.id for t in await stores.turns.orphaned(now, include_unleased=False)}
    everything = {t.id for t in await stores.turns.orphaned(now, include_unleased=True)}

    assert expired.id in orphaned and not {live.id, unleased.id, done.id} & orphaned
    assert {expired.id, live.id, unleased.id} <= everything and done.id not in everything
    assert all(isinstance(t, TurnRecord) for t in await stores.turns.orphaned(now, include_unleased=True))


# -- the event log --------------------------------------------------------------------

async def test_append_stores_events_and_projection_together(stores: Stores) -> None:
    _, turn = await started(stores)
    events = [(2, "response.output_text.delta", '{"d":"a"}'), (3, "response.output_text.delta", '{"d":"b"}')]

    assert await stores.turns.append(turn.id, events, {"id": turn.id, "status": "in_progress", "text": "ab"},
                                     "in_progress")

    assert await stores.turns.read(turn.id, after_seq=1) == [StoredEvent(*e) for e in events]
    assert await stores.turns.log_end(turn.id) == ("in_progress", 3)
    assert await stores.turns.snapshot(turn.id) == (turn.account, {"id": turn.id, "status": "in_progress",
                                                                   "text": "ab"})


async def test_concurrent_appends_of_many_turns_share_a_transaction_and_fail_alone(stores: Stores) -> None:
    """Live turns' batches that arrive together are one group commit (store/group_append.py);
    a turn that is gone, or a batch that breaks a constraint, fails only its own append."""
    turns = [(await started(stores))[1] for _ in range(RACERS)]
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    def append_all(seq: dict[str, int]) -> Any:
        return asyncio.gather(*(
            stores.turns.append(t.id, [(seq[t.id], "response.output_text.delta", json.dumps({"d": t.id}))],
                                {"id": t.id, "status": "in_progress", "seq": seq[t.id]}, "in_progress")
            for t in turns), return_exceptions=True)

    engine = stores.turns._engine.sync_engine  # type: ignore[attr-defined]
    event.listen(engine, "commit", count)
    try:
        assert await append_all({t.id: 2 for t in turns}) == [True] * RACERS
        assert commits == 1  # not one transaction per turn
        gone, clash = turns[0], turns[1]
        assert await stores.turns.delete(gone.id)
        results = await append_all({t.id: 2 if t is clash else 3 for t in turns})
    finally:
        event.remove(engine, "commit", count)

    assert results[0] is False  # the deleted turn: nothing written
    assert isinstance(results[1], IntegrityError)  # seq 2 is taken: only that turn's append fails
    assert results[2:] == [True] * (RACERS - 2)
    for t in turns[2:]:
        assert [e.seq for e in await stores.turns.read(t.id)] == [0, 1, 2, 3]
        assert await stores.turns.log_end(t.id) == ("in_progress", 3)
        assert (await stores.turns.snapshot(t.id))[1]["seq"] == 3  # type: ignore[index]
    assert await stores.turns.read(gone.id) == []
    assert await stores.turns.log_end(clash.id) == ("in_progress", 2)


async def test_concurrent_creates_share_a_transaction_and_a_taken_key_fails_alone(stores: Stores) -> None:
    """New turns that arrive together are one transaction (`TurnStore.create`, grouped); a
    create whose idempotency key is taken answers the winner and writes nothing, the others
    of its group are written."""
    account, key = _id("acct"), _id("key")
    _, winner = await started(stores, key=key, session=new_session(account))
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    def create_all(pairs: list[tuple[SessionRecord, TurnRecord]]) -> Any:
        return asyncio.gather(*(stores.turns.create(s, t, first_events(t)) for s, t in pairs), return_exceptions=True)

    def fresh(taken_at: int | None = None) -> list[tuple[SessionRecord, TurnRecord]]:
        sessions = [new_session(account) for _ in range(RACERS)]
        return [(s, new_turn(s, key=key if i == taken_at else None)) for i, s in enumerate(sessions)]

    engine = stores.turns._engine.sync_engine  # type: ignore[attr-defined]
    event.listen(engine, "commit", count)
    try:
        clean = fresh()
        assert await create_all(clean) == [None] * RACERS
        assert commits == 1  # not one transaction per create
        mixed = fresh(taken_at=1)
        results = await create_all(mixed)
    finally:
        event.remove(engine, "commit", count)
    assert isinstance(results[1], DuplicateIdempotencyKey) and results[1].existing == winner
    assert results[:1] + results[2:] == [None] * (RACERS - 1)
    assert await stores.turns.get(mixed[1][1].id) is None and await stores.sessions.get(mixed[1][0].id) is None
    for s, t in clean + mixed[:1] + mixed[2:]:
        assert await stores.turns.get(t.id) == t
        assert (await stores.sessions.get(s.id)) == s
        assert [e.seq for e in await stores.turns.read(t.id)] == [0, 1]


async def test_append_only_if_is_a_compare_and_set(stores: Stores) -> None:
    _, turn = await started(stores)

    moved = await stores.turns.append(turn.id, [(2, "response.cancelled", "{}")], {"status": "cancelled"},
                                      "cancelled", only_if=("queued", 0))
    assert not moved
    assert await stores.turns.log_end(turn.id) == ("queued", 1)
    assert len(await stores.turns.read(turn.id)) == 2

    assert await stores.turns.append(turn.id, [(2, "response.cancelled", "{}")], {"status": "cancelled"},
                                     "cancelled", only_if=("queued", 1))
    assert await stores.turns.log_end(turn.id) == ("cancelled", 2)
    assert await stores.turns.claim(turn.id, "replica-b", 30) is None  # a cancel before the claim wins


# -- follow-ups: one idle session, one winner -------------------------------------------

async def test_followup_on_a_busy_session_is_refused(stores: Stores) -> None:
    session, running = await started(stores)
    follow = new_turn(session)

    with pytest.raises(SessionBusy) as raised:
        await stores.turns.create_followup(session.id, follow, first_events(follow))

    assert (raised.value.turn_id, raised.value.paused) == (running.id, False)
    assert await stores.turns.get(follow.id) is None
    assert await stores.turns.latest_for_session(session.id) == running


async def test_followup_on_an_idle_session_adds_the_turn_and_session_values(stores: Stores) -> None:
    session, done = await started(stores)
    await finish(stores, done)
    follow = new_turn(session, created_at=done.created_at + 1)

    await stores.turns.create_followup(session.id, follow, first_events(follow), max_cost_usd=9.5)

    assert await stores.turns.get(follow.id) == follow
    assert await stores.turns.latest_for_session(session.id) == follow
    updated = await stores.sessions.require(session.id)
    assert updated.max_cost_usd == 9.5 and updated.updated_at >= session.updated_at
    chain = await stores.turns.chain_point(done.id)
    assert chain is not None
    assert (chain[0].id, chain[1], chain[2]) == (done.id, updated, follow)


async def test_a_turn_paused_on_approval_keeps_its_session_busy(stores: Stores) -> None:
    session, paused = await started(stores)
    await finish(stores, paused, "incomplete", incomplete_details={"reason": "approval_required"})
    follow = new_turn(session)
    with pytest.raises(SessionBusy) as raised:
        await stores.turns.create_followup(session.id, follow, first_events(follow))
    assert (raised.value.turn_id, raised.value.paused) == (paused.id, True)

    # Incomplete for another reason (e.g. out of budget): the session takes a follow-up.
    other_session, capped = await started(stores)
    await finish(stores, capped, "incomplete", incomplete_details={"reason": "max_cost"})
    follow = new_turn(other_session)
    await stores.turns.create_followup(other_session.id, follow, first_events(follow))
    assert await stores.turns.get(follow.id) == follow


async def test_followup_on_a_closed_session_is_refused(stores: Stores) -> None:
    session, done = await started(stores)
    await finish(stores, done)
    await stores.sessions.update(session.id, closed=True)
    follow = new_turn(session)

    with pytest.raises(SessionClosed):
        await stores.turns.create_followup(session.id, follow, first_events(follow))
    assert await stores.turns.get(follow.id) is None


async def test_followup_with_a_taken_key_answers_the_winner(stores: Stores) -> None:
    key = _id("key")
    _, winner = await started(stores, key=key)
    session, done = await started(stores, session=new_session(winner.account))
    await finish(stores, done)
    follow = new_turn(session, key=key)

    with pytest.raises(DuplicateIdempotencyKey) as raised:
        await stores.turns.create_followup(session.id, follow, first_events(follow), max_cost_usd=1.0)

    assert raised.value.existing == winner
    assert (await stores.sessions.require(session.id)).max_cost_usd == session.max_cost_usd  # rolled back


# -- listing and deleting ---------------------------------------------------------------

async def test_list_for_account_is_newest_first_and_pages(stores: Stores) -> None:
    account = _id("acct")
    base = time.time()
    made = []
    for i in range(5):  # two share a created_at: the id breaks the tie
        session, turn = await started(stores, session=new_session(account), created_at=base + min(i, 3))
        made.append(turn)
    expected = sorted(made, key=lambda t: (t.created_at, t.id), reverse=True)

    first = await stores.turns.list_for_account(account, 3)
    rest = await stores.turns.list_for_account(account, 3, before=first[-1])

    assert first + rest == expected
    assert await stores.turns.list_for_account(_id("nobody"), 3) == []


async def test_delete_removes_the_turn_its_log_and_its_last_session(stores: Stores) -> None:
    session, first = await started(stores)
    await finish(stores, first)
    second = new_turn(session, created_at=first.created_at + 1)
    await stores.turns.create_followup(session.id, second, first_events(second))

    assert await stores.turns.delete(first.id)
    assert await stores.turns.get(first.id) is None and await stores.turns.read(first.id) == []
    assert await stores.sessions.get(session.id) is not None  # it still has a turn
    assert await stores.turns.delete(second.id)
    assert await stores.sessions.get(session.id) is None
    assert not await stores.turns.delete(second.id)


# -- sessions -------------------------------------------------------------------------

async def test_save_messages_only_while_the_turn_is_running(stores: Stores) -> None:
    session, turn = await started(stores)
    history = [{"role": "user", "content": "hi"}]

    assert await stores.sessions.save_messages(session.id, history)  # no turn: unconditional
    assert (await stores.sessions.require(session.id)).messages == history
    assert not await stores.sessions.save_messages(session.id, [], turn.id)  # queued, not running
    await stores.turns.claim(turn.id, "replica-b", 30)
    longer = [*history, {"role": "assistant", "content": "hello"}]
    assert await stores.sessions.save_messages(session.id, longer, turn.id)
    await finish(stores, turn)
    assert not await stores.sessions.save_messages(session.id, [], turn.id)  # it lost the turn
    assert (await stores.sessions.require(session.id)).messages == longer
    assert not await stores.sessions.save_messages("sess_missing", history)


async def test_update_sets_session_fields(stores: Stores) -> None:
    session, _ = await started(stores)
    pending = {"calls": [{"id": "c1", "tool": "hf_jobs"}]}

    await stores.sessions.update(session.id, pending=pending, max_cost_usd=2.5)

    updated = await stores.sessions.require(session.id)
    assert (updated.pending, updated.max_cost_usd, updated.closed) == (pending, 2.5, False)
    await stores.sessions.update(session.id, pending=None, closed=True)
    updated = await stores.sessions.require(session.id)
    assert (updated.pending, updated.closed) == (None, True)


async def test_busy_sessions_are_recent_or_running(stores: Stores) -> None:
    long_ago = time.time() - 3600
    idle, done = await started(stores, session=new_session(created_at=long_ago, updated_at=long_ago))
    await finish(stores, done)
    running, _ = await started(stores, session=new_session(created_at=long_ago, updated_at=long_ago))
    recent, recent_turn = await started(stores)
    await finish(stores, recent_turn)

    busy = await stores.sessions.busy([idle.id, running.id, recent.id, "sess_missing"], since=long_ago + 60)

    assert busy == {running.id, recent.id}
    assert await stores.sessions.busy([], since=0) == set()


# -- approvals ------------------------------------------------------------------------

async def test_approval_resume_requeues_a_paused_turn_once(stores: Stores) -> None:
    session, turn = await started(stores)
    await finish(stores, turn, "incomplete", incomplete_details={"reason": "approval_required"})
    decided = {"calls": [{"id": "c1", "approved": True}]}

    assert await stores.approvals.resume(turn.id, session.id, decided, 7.0, "replica-b", 30)

    resumed = await stores.turns.require(turn.id)
    assert (resumed.status, resumed.lease_owner) == ("queued", "replica-b")
    updated = await stores.sessions.require(session.id)
    assert (updated.pending, updated.max_cost_usd) == (decided, 7.0)
    assert not await stores.approvals.resume(turn.id, session.id, {"again": True}, None, "replica-c", 30)
    assert (await stores.sessions.require(session.id)).pending == decided
    assert (await stores.turns.require(turn.id)).lease_owner == "replica-b"


async def test_approval_resume_without_a_cap_keeps_the_cap(stores: Stores) -> None:
    session, turn = await started(stores)
    await finish(stores, turn, "incomplete", incomplete_details={"reason": "approval_required"})

    assert await stores.approvals.resume(turn.id, session.id, {"d": 1}, None, "replica-b", 30)

    assert (await stores.sessions.require(session.id)).max_cost_usd == session.max_cost_usd


async def test_approval_resume_of_a_cancelled_turn_changes_nothing(stores: Stores) -> None:
    session, turn = await started(stores)
    await finish(stores, turn, "cancelled")

    assert not await stores.approvals.resume(turn.id, session.id, {"d": 1}, 9.0, "replica-b", 30)

    assert (await stores.turns.require(turn.id)).status == "cancelled"
    assert await stores.sessions.require(session.id) == session


# -- pauses and accounts -----------------------------------------------------------------

async def test_pauses_add_remove_keep(stores: Stores) -> None:
    a, b, c = _id("agent-a"), _id("agent-b"), _id("agent-c")
    await stores.pauses.add(a, "ops")
    await stores.pauses.add(a, "someone-else")  # idempotent
    await stores.pauses.add(b, "ops")
    await stores.pauses.add(c, "ops")
    assert {a, b, c} <= set(await stores.pauses.names())
    assert (await stores.pauses.names()) == sorted(await stores.pauses.names())

    await stores.pauses.remove(b)
    assert b not in await stores.pauses.names()
    await stores.pauses.keep([a, b])
    assert await stores.pauses.names() == [a]


async def test_accounts_seen_list_count(stores: Stores) -> None:
    name = _id("acct")
    await stores.accounts.seen(name, "hf_user")
    first = next(a for a in await stores.accounts.list() if a.name == name)
    assert first.kind == "hf_user" and first.created_at == first.last_seen_at

    await asyncio.sleep(0.01)
    await stores.accounts.seen(name, "hf_user")

    again = next(a for a in await stores.accounts.list() if a.name == name)
    assert again.created_at == first.created_at and again.last_seen_at > first.last_seen_at
    listed = await stores.accounts.list()
    assert [a.name for a in listed] == sorted(a.name for a in listed)
    assert await stores.accounts.count() == len(listed)


# -- concurrency: exactly one winner on each backend --------------------------------------

async def _race(calls: list[Any]) -> list[Any]:
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_concurrent_claims_have_one_winner(stores: Stores) -> None:
    _, turn = await started(stores)

    results = await _race([stores.turns.claim(turn.id, f"replica-{i}", 30) for i in range(RACERS)])

    winners = [r for r in results if isinstance(r, TurnRecord)]
    assert len(winners) == 1 and results.count(None) == RACERS - 1
    assert (await stores.turns.require(turn.id)).lease_owner == winners[0].lease_owner


async def test_concurrent_followups_on_an_idle_session_have_one_winner(stores: Stores) -> None:
    session, done = await started(stores)
    await finish(stores, done)
    follows = [new_turn(session) for _ in range(RACERS)]

    results = await _race([stores.turns.create_followup(session.id, t, first_events(t)) for t in follows])

    won = [t for t, r in zip(follows, results, strict=True) if r is None]
    assert len(won) == 1
    busy = [r for r in results if isinstance(r, SessionBusy)]
    assert len(busy) == RACERS - 1 and {b.turn_id for b in busy} == {won[0].id}
    assert await stores.turns.latest_for_session(session.id) == won[0]


async def test_concurrent_creates_with_one_key_have_one_winner(stores: Stores) -> None:
    account, key = _id("acct"), _id("key")
    pairs = [(s, new_turn(s, key=key)) for s in (new_session(account) for _ in range(RACERS))]

    results = await _race([stores.turns.create(s, t, first_events(t)) for s, t in pairs])

    won = [t for (_, t), r in zip(pairs, results, strict=True) if r is None]
    assert len(won) == 1
    duplicates = [r for r in results if isinstance(r, DuplicateIdempotencyKey)]
    assert len(duplicates) == RACERS - 1 and all(d.existing == won[0] for d in duplicates)


async def test_concurrent_first_sightings_make_one_account(stores: Stores) -> None:
    name = _id("acct")
    before = await stores.accounts.count()

    results = await _race([stores.accounts.seen(name, "api_key") for _ in range(RACERS)])

    assert results == [None] * RACERS
    assert [a.name for a in await stores.accounts.list()].count(name) == 1
    assert await stores.accounts.count() == before + 1


# -- the model registry -----------------------------------------------------------------

def new_model(account: str | None = None, **values: Any) -> ModelRecord:
    now = time.time()
    fields: dict[str, Any] = {"id": _id("model"), "account": account or _id("acct"), "modelname": "iris",
                              "modelkind": "Classification", "spec": {"modeldescription": "d", "hyperparameter": []},
                              "tags": ["a", "b"], "created_at": now, "updated_at": now}
    return ModelRecord(**{**fields, **values})


async def add_file(stores: Stores, model: ModelRecord, kind: str = "model", sha: str | None = None) -> Any:
    return await stores.registry.add_file(id=_id("file"), model_id=model.id, kind=kind, filename=f"{kind}.bin",
                                          size=3, sha256=sha or uuid.uuid4().hex * 2, source="upload")


async def test_model_add_get_list_update_delete(stores: Stores) -> None:
    reg = stores.registry
    model = await reg.add_model(new_model())
    assert await reg.get_model(model.account, model.id) == model
    other = await reg.add_model(new_model(model.account, modelkind="regression", created_at=model.created_at + 1))
    assert [m.id for m in await reg.list_models(model.account)] == [model.id, other.id]
    assert [m.id for m in await reg.list_models(model.account, kind="REGRESSION")] == [other.id]
    assert [m.id for m in await reg.list_models(model.account, skip=1, limit=5)] == [other.id]
    updated = await reg.update_model(model.account, model.id, modelname="renamed", tags=["c"])
    assert updated is not None and (updated.modelname, updated.tags, updated.spec) == ("renamed", ["c"], model.spec)
    assert updated.updated_at >= model.updated_at
    assert await reg.get_model(model.account, model.id) == updated
    with pytest.raises(dataclasses.FrozenInstanceError):
        updated.modelname = "x"  # type: ignore[misc]
    files = [await add_file(stores, model), await add_file(stores, model, "data")]
    assert sorted(await reg.delete_model(model.account, model.id)) == sorted(f.sha256 for f in files)
    assert await reg.get_model(model.account, model.id) is None
    assert await reg.list_files(model.id) == []
    assert not await reg.sha_in_use(files[0].sha256)
    assert await reg.delete_model(model.account, model.id) == []


async def test_another_accounts_model_is_none(stores: Stores) -> None:
    reg = stores.registry
    model = await reg.add_model(new_model())
    file = await add_file(stores, model)
    stranger = _id("acct")
    assert await reg.get_model(stranger, model.id) is None
    assert await reg.list_models(stranger) == []
    assert await reg.update_model(stranger, model.id, modelname="stolen") is None
    assert await reg.delete_model(stranger, model.id) == []
    kept = await reg.get_model(model.account, model.id)
    assert kept is not None and kept.modelname == model.modelname
    assert await reg.get_file(file.id) == file


async def test_files_are_versioned_per_model_and_kind(stores: Stores) -> None:
    reg = stores.registry
    model = await reg.add_model(new_model())
    shared = uuid.uuid4().hex * 2
    first = await add_file(stores, model, sha=shared)
    second = await add_file(stores, model)
    data = await add_file(stores, model, "data")
    assert (first.version, second.version, data.version) == (1, 2, 1)
    assert await reg.get_file(first.id) == first
    assert await reg.latest_file(model.id, "model") == second
    assert await reg.latest_file(model.id, "code") is None
    assert [f.id for f in await reg.list_files(model.id)] == [data.id, first.id, second.id]  # by kind, version
    assert await reg.sha_in_use(shared)
    assert await reg.get_file(_id("file")) is None


async def test_training_add_get_update_list(stores: Stores) -> None:
    reg = stores.registry
    now = time.time()
    training = TrainingRecord(id=_id("train"), account=_id("acct"), model_id=_id("model"),
                              placement={"kind": "local"}, backend="local", job_id=None, status="queued",
                              reason=None, metrics={}, result_file_id=None, created_at=now, updated_at=now,
                              lease_owner="replica-a", lease_expires_at=now + 60)
    await reg.add_training(training)
    assert await reg.get_training(training.account, training.id) == training
    assert await reg.get_training(_id("acct"), training.id) is None
    await reg.update_training(training.id, status="succeeded", metrics={"acc": 0.9}, job_id="job-1")
    done = await reg.get_training(training.account, training.id)
    assert done is not None
    assert (done.status, done.metrics, done.job_id, done.placement) == ("succeeded", {"acc": 0.9}, "job-1",
                                                                        {"kind": "local"})
    assert [t.id for t in await reg.list_trainings(training.account)] == [training.id]


async def test_deployment_status_transitions(stores: Stores) -> None:
    reg = stores.registry
    account = _id("acct")
    dep = await reg.add_deployment(account=account, deployment_id="dep-1", model_id=_id("model"), file_id=None,
                                   ownerid="owner", placement={"kind": "local"}, inference_data=1)
    assert dep.status == "pending" and isinstance(dep.pk, int)
    assert await reg.get_deployment(account, "dep-1") == dep
    assert await reg.get_deployment(_id("acct"), "dep-1") is None
    with pytest.raises(DuplicateError):
        await reg.add_deployment(account=account, deployment_id="dep-1", model_id=dep.model_id, file_id=None,
                                 ownerid="owner", placement={}, inference_data=0)
    elsewhere = await reg.add_deployment(account=_id("acct"), deployment_id="dep-1", model_id=dep.model_id,
                                         file_id=None, ownerid="owner", placement={}, inference_data=0)
    assert elsewhere.pk != dep.pk  # the id is unique per account, not globally
    assert [d.pk for d in await reg.active_deployments(account)] == [dep.pk]
    assert await reg.set_deployment_status(dep.pk, "running", only_from=("pending", "running"))
    assert await reg.set_deployment_status(dep.pk, "stopped", "deleted by its owner")
    assert not await reg.set_deployment_status(dep.pk, "running", only_from=("pending", "running"))
    stopped = await reg.get_deployment(account, "dep-1")
    assert stopped is not None and (stopped.status, stopped.reason) == ("stopped", "deleted by its owner")
    assert await reg.active_deployments(account, dep.model_id) == []
    assert [d.pk for d in await reg.list_deployments(account)] == [dep.pk]


async def test_operations_bulk_and_single_listed_in_order(stores: Stores) -> None:
    reg = stores.registry
    account = _id("acct")
    base = {"account": account, "deployment_id": "dep-1", "model_id": "m", "result": "[1]"}
    await reg.add_operations([{**base, "ownerid": "a", "data": "[[1]]", "created_at": time.time()},
                              {**base, "ownerid": "b", "data": "[[2]]", "created_at": time.time()}])
    one = await reg.add_operation(ownerid="a", data="[[3]]", **base)
    assert isinstance(one.id, int) and one.data == "[[3]]"
    assert [o.data for o in await reg.list_operations(account, ownerid="a")] == ["[[1]]", "[[3]]"]
    assert [o.data for o in await reg.list_operations(account, deployment_id="dep-1", skip=1)] == ["[[2]]", "[[3]]"]
    assert await reg.list_operations(_id("acct")) == []


async def test_concurrent_status_moves_from_pending_have_one_winner(stores: Stores) -> None:
    reg = stores.registry
    dep = await reg.add_deployment(account=_id("acct"), deployment_id="dep-race", model_id="m", file_id=None,
                                   ownerid="o", placement={}, inference_data=0)
    wins = await asyncio.gather(*(reg.set_deployment_status(dep.pk, "running", only_from=("pending",))
                                  for _ in range(RACERS)))
    assert wins.count(True) == 1


# -- fine-tuning ------------------------------------------------------------------------

def new_job(account: str | None = None, **values: Any) -> FineTuningJobRecord:
    now = time.time()
    fields: dict[str, Any] = {"id": _id("ft"), "account": account or _id("acct"), "model_id": "tiny", "status": "created",
                              "training_file": _id("file"), "validation_file": None, "suffix": None,
                              "compute_config": {"instance_type": "cpu"}, "backend": "local", "fine_tuned_model": None,
                              "output_dir": None, "metrics": None, "error": None, "created_at": now,
                              "updated_at": now}
    return FineTuningJobRecord(**{**fields, **values})


async def test_uploaded_files_add_get_list(stores: Stores) -> None:
    ft = stores.finetunes
    account = _id("acct")
    files = [UploadedFileRecord(id=_id("file"), account=account, filename=f"{n}.jsonl", purpose="fine-tune",
                                bytes=10 + n, sha256="0" * 64, path=f"files/{n}", created_at=time.time() + n)
             for n in range(2)]
    for f in files:
        await ft.add_file(f)
    assert await ft.file(files[0].id) == files[0]
    assert await ft.files(account) == files
    assert await ft.files(_id("acct")) == []
    assert await ft.file(_id("file")) is None


async def test_job_add_get_list_by_model_update(stores: Stores) -> None:
    ft = stores.finetunes
    job = new_job(hub={"namespace": "alice"}, estimated_cost_usd=0.5)
    newer = new_job(job.account, created_at=job.created_at + 1)
    await ft.add_job(job)
    await ft.add_job(newer)
    assert await ft.job(job.id) == job
    assert [j.id for j in await ft.jobs(job.account)] == [newer.id, job.id]  # newest first
    assert {job.id, newer.id} <= {j.id for j in await ft.jobs(None)}
    assert await ft.transition(job.id, ("created",), "succeeded", fine_tuned_model="ft:tiny:x", output_dir="out")
    done = await ft.by_model(job.account, "ft:tiny:x")
    assert done is not None and (done.id, done.status, done.output_dir) == (job.id, "succeeded", "out")
    assert await ft.by_model(_id("acct"), "ft:tiny:x") is None
    await ft.set_metrics(job.id, {"loss": 0.1})
    await ft.update(job.id, cost_usd=0.25)
    read = await ft.job(job.id)
    assert read is not None and (read.metrics, read.cost_usd, read.hub) == ({"loss": 0.1}, 0.25, {"namespace": "alice"})


async def test_job_transition_only_from_the_given_statuses(stores: Stores) -> None:
    ft = stores.finetunes
    job = new_job()
    await ft.add_job(job)
    assert not await ft.transition(job.id, ("running",), "succeeded")
    assert (await ft.job(job.id)).status == "created"  # type: ignore[union-attr]
    assert await ft.transition(job.id, ("created", "queued"), "running")
    assert not await ft.transition(_id("ft"), ("created",), "running")


async def test_concurrent_transitions_from_one_status_have_one_winner(stores: Stores) -> None:
    ft = stores.finetunes
    job = new_job(status="running")
    await ft.add_job(job)
    results = await asyncio.gather(*(ft.transition(job.id, ("running",), "cancelled" if n % 2 else "failed",
                                                   error=f"racer {n}") for n in range(RACERS)))
    assert results.count(True) == 1
    final = await ft.job(job.id)
    winner = results.index(True)
    assert final is not None and final.error == f"racer {winner}"
    assert final.status == ("cancelled" if winner % 2 else "failed")
