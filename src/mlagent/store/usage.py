"""Usage tables and their repository: the LLM call log, tool charges, thread token
budgets, and counter resets.

Counters are derived from the call log: a reset stores a watermark (the last call id it
covers) per account, or for everyone (`*`), so resetting zeroes totals and keeps the log.
Session spend (`sessions.spent_usd`) is recomputed from the log in the same transaction
as every write, so it always equals the sum of what was recorded.

A running turn's writes and its spend read are Core statements built once: a recording is
its INSERT plus one `UPDATE sessions … RETURNING` whose subqueries give the whole spend (a
thread's first call also inserts its token budget), and reading the spend is one SELECT.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Boolean,
    ColumnElement,
    Float,
    Integer,
    String,
    Table,
    bindparam,
    case,
    distinct,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from .tables import Base, Session

GLOBAL_SCOPE = "*"


class LlmCallRow(Base):
    """One chat-completion call (seed 002's usage tracker, persisted)."""

    __tablename__ = "llm_calls"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    thread_id: Mapped[str] = mapped_column(String(64), index=True)
    response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    priced: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)


class ChargeRow(Base):
    """A billable tool action (a job, sandbox time, another priced tool): the estimate
    when it was admitted, replaced by the actual cost once known."""

    __tablename__ = "usage_charges"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    session_id: Mapped[str] = mapped_column(String(64), index=True)
    response_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    call_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    estimate_usd: Mapped[float] = mapped_column(Float)
    actual_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    priced: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[float] = mapped_column(Float)
    settled_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ThreadBudgetRow(Base):
    """A thread's (session's) token budget; created by the thread's first LLM call."""

    __tablename__ = "thread_budgets"
    thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    max_tokens: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)


class UsageResetRow(Base):
    """Counters count only calls with an id above the watermark of their account and `*`."""

    __tablename__ = "usage_resets"
    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    after_id: Mapped[int] = mapped_column(BigInteger)
    reset_at: Mapped[float] = mapped_column(Float)


# -- the hot statements (a running turn's meter), built once ---------------------------
_CALLS = cast(Table, LlmCallRow.__table__)
_CHARGES = cast(Table, ChargeRow.__table__)
_BUDGETS = cast(Table, ThreadBudgetRow.__table__)
_SESSIONS = cast(Table, Session.__table__)
_SID: BindParameter[str] = bindparam("session_id")
_INSERT_CALL = insert(_CALLS)


def _of_calls(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return select(value).where(_CALLS.c.thread_id == _SID).scalar_subquery()


def _of_charges(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return select(value).where(_CHARGES.c.session_id == _SID).scalar_subquery()


_AMOUNT = func.coalesce(_CHARGES.c.actual_usd, _CHARGES.c.estimate_usd)
_KINDS = ("job", "sandbox")  # the other kinds add up as `other_usd`
_INFERENCE_USD = _of_calls(func.coalesce(func.sum(_CALLS.c.cost_usd), 0.0))
_CHARGED_USD = _of_charges(func.coalesce(func.sum(_AMOUNT), 0.0))
# The whole spend of one session (and its thread's token budget), as columns of its row.
_SPEND_COLUMNS = (
    _INFERENCE_USD,
    _of_charges(func.coalesce(func.sum(case((_CHARGES.c.kind == "job", _AMOUNT), else_=0.0)), 0.0)),
    _of_charges(func.coalesce(func.sum(case((_CHARGES.c.kind == "sandbox", _AMOUNT), else_=0.0)), 0.0)),
    _of_charges(func.coalesce(func.sum(case((_CHARGES.c.kind.in_(_KINDS), 0.0), else_=_AMOUNT)), 0.0)),
    _of_calls(func.coalesce(func.sum(_CALLS.c.input_tokens), 0)),
    _of_calls(func.coalesce(func.sum(_CALLS.c.output_tokens), 0)),
    _of_calls(func.count(_CALLS.c.id)),
    _of_calls(func.coalesce(func.sum(case((_CALLS.c.priced.is_(False), 1), else_=0)), 0))
    + _of_charges(func.coalesce(func.sum(case((_CHARGES.c.priced.is_(False), 1), else_=0)), 0)),
    _SESSIONS.c.max_cost_usd,
    select(_BUDGETS.c.max_tokens).where(_BUDGETS.c.thread_id == _SID).scalar_subquery(),
)
_READ_SPEND = select(*_SPEND_COLUMNS).where(_SESSIONS.c.id == _SID)
# The session's spent_usd recomputed from the log, in the transaction of the write it follows.
_REFRESH_SPEND = (update(_SESSIONS).where(_SESSIONS.c.id == _SID)
                  .values(spent_usd=_INFERENCE_USD + _CHARGED_USD).returning(*_SPEND_COLUMNS))


def _insert_budget(dialect: str) -> Any:
    """A thread's budget row unless it has one (a concurrent first call may insert it too). The
    dialect's module is imported here, where the engine has loaded it already: at start a
    SQLite server would import PostgreSQL's for nothing (~20 ms)."""
    name = "postgresql" if dialect == "postgresql" else "sqlite"
    module: Any = importlib.import_module(f"sqlalchemy.dialects.{name}")
    return module.insert(_BUDGETS).on_conflict_do_nothing(index_elements=[_BUDGETS.c.thread_id])


@dataclass
class LlmCallRecord:
    account: str
    thread_id: str
    response_id: str | None
    agent: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    priced: bool
    latency_ms: float


@dataclass
class SessionSpend:
    """A session's attributed spend, split by kind, and its tokens."""

    inference_usd: float = 0.0
    jobs_usd: float = 0.0
    sandboxes_usd: float = 0.0
    other_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    llm_calls: int = 0
    unpriced: int = 0
    max_cost_usd: float = 0.0
    thread_max_tokens: int | None = None  # the thread's token budget (None before its first call)

    @property
    def total_usd(self) -> float:
        return self.inference_usd + self.jobs_usd + self.sandboxes_usd + self.other_usd


def _spend_of(row: Sequence[Any] | None) -> SessionSpend:
    """A `_SPEND_COLUMNS` row as a `SessionSpend` (zeros and no cap for a missing session)."""
    if row is None:
        return SessionSpend()
    return SessionSpend(inference_usd=float(row[0]), jobs_usd=float(row[1]), sandboxes_usd=float(row[2]),
                        other_usd=float(row[3]), input_tokens=int(row[4]), output_tokens=int(row[5]),
                        llm_calls=int(row[6]), unpriced=int(row[7]),
                        max_cost_usd=float(row[8]) if row[8] is not None else 0.0,
                        thread_max_tokens=int(row[9]) if row[9] is not None else None)


@dataclass
class Totals:
    key: str
    prompt_tokens: int
    completion_tokens: int
    request_count: int
    total_cost: float
    latency_ms_sum: float
    unpriced: int
    threads: int = 0


@dataclass
class ThreadBudget:
    thread_id: str
    account: str
    max_tokens: int
    prompt_tokens: int
    completion_tokens: int


class UsageStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessions
        self._engine = sessions.kw["bind"]
        self._insert_budget = _insert_budget(self._engine.dialect.name)

    # -- writes (each also refreshes the session's spent_usd) ---------------------
    async def record_llm_call(self, rec: LlmCallRecord, default_max_tokens: int,
                              budget_exists: bool = False) -> SessionSpend:
        """Log the call; a thread's first call also creates its token budget (skipped when
        the caller already saw the budget: `budget_exists`). Returns the spend after it."""
        now = time.time()
        async with self._engine.begin() as conn:
            await conn.execute(_INSERT_CALL, {"created_at": now, **rec.__dict__})
            if not budget_exists:
                await conn.execute(self._insert_budget, {"thread_id": rec.thread_id, "account": rec.account,
                                                         "max_tokens": default_max_tokens, "created_at": now})
            return await self._refresh_spend(conn, rec.thread_id)

    async def add_charge(self, account: str, session_id: str, response_id: str | None, kind: str, name: str,
                         call_id: str | None, estimate_usd: float, priced: bool) -> SessionSpend:
        async with self._engine.begin() as conn:
            await conn.execute(insert(_CHARGES).values(
                account=account, session_id=session_id, response_id=response_id, kind=kind, name=name,
                call_id=call_id, estimate_usd=estimate_usd, priced=priced, created_at=time.time()))
            return await self._refresh_spend(conn, session_id)

    async def settle_charge(self, session_id: str, call_id: str, actual_usd: float) -> SessionSpend:
        """Replace the estimate of the session's charge for `call_id` with the actual cost."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(_CHARGES).where(_CHARGES.c.session_id == session_id, _CHARGES.c.call_id == call_id)
                .values(actual_usd=actual_usd, priced=True, settled_at=time.time())
            )
            return await self._refresh_spend(conn, session_id)

    @staticmethod
    async def _refresh_spend(conn: AsyncConnection, session_id: str) -> SessionSpend:
        return _spend_of((await conn.execute(_REFRESH_SPEND, {"session_id": session_id})).first())

    # -- reads ----------------------------------------------------------------------
    async def session_spend(self, session_id: str) -> SessionSpend:
        """The session's spend, its cap and its thread's token budget, in one statement."""
        async with self._engine.connect() as conn:
            return _spend_of((await conn.execute(_READ_SPEND, {"session_id": session_id})).first())

    async def _watermark(self, db: AsyncSession, scope: str) -> int:
        row = await db.get(UsageResetRow, scope)
        return row.after_id if row is not None else 0

    async def totals(self, account: str | None, group: str | None = None, key: str | None = None) -> list[Totals]:
        """Counters since the last reset, for `account` (None: everyone), overall or
        grouped by `agent` / `model`; `key` keeps only that agent or model."""
        async with self._sm() as db:
            glob = await self._watermark(db, GLOBAL_SCOPE)
            column = {"agent": LlmCallRow.agent, "model": LlmCallRow.model}.get(group or "")
            label = column if column is not None else func.max(LlmCallRow.agent)
            stmt = (
                select(label, func.coalesce(func.sum(LlmCallRow.input_tokens), 0),
                       func.coalesce(func.sum(LlmCallRow.output_tokens), 0), func.count(LlmCallRow.id),
                       func.coalesce(func.sum(LlmCallRow.cost_usd), 0.0),
                       func.coalesce(func.sum(LlmCallRow.latency_ms), 0.0),
                       func.coalesce(func.sum(case((LlmCallRow.priced.is_(False), 1), else_=0)), 0),
                       func.count(distinct(LlmCallRow.thread_id)))
                .outerjoin(UsageResetRow, UsageResetRow.scope == LlmCallRow.account)
                .where(LlmCallRow.id > glob, LlmCallRow.id > func.coalesce(UsageResetRow.after_id, 0))
            )
            if account is not None:
                stmt = stmt.where(LlmCallRow.account == account)
            if column is not None:
                if key is not None:
                    stmt = stmt.where(column == key)
                stmt = stmt.group_by(column).order_by(column)
            rows = (await db.execute(stmt)).all()
            return [Totals(key=str(r[0] or ""), prompt_tokens=int(r[1]), completion_tokens=int(r[2]),
                           request_count=int(r[3]), total_cost=float(r[4]), latency_ms_sum=float(r[5]),
                           unpriced=int(r[6]), threads=int(r[7])) for r in rows if column is None or r[3]]

    async def reset(self, account: str | None) -> None:
        """Zero the counters of `account` (None: everyone's); the call log is kept."""
        scope = account or GLOBAL_SCOPE
        async with self._sm() as db, db.begin():
            last = (await db.execute(select(func.coalesce(func.max(LlmCallRow.id), 0)))).scalar_one()
            row = await db.get(UsageResetRow, scope)
            if row is None:
                db.add(UsageResetRow(scope=scope, after_id=int(last), reset_at=time.time()))
            else:
                row.after_id, row.reset_at = int(last), time.time()

    async def budgets(self, account: str | None, thread_id: str | None = None) -> list[ThreadBudget]:
        """Thread budgets with the tokens their threads used (all calls: a counter reset
        never lifts a budget). Reading never creates one."""
        async with self._sm() as db:
            used = (
                select(LlmCallRow.thread_id.label("tid"), func.sum(LlmCallRow.input_tokens).label("pin"),
                       func.sum(LlmCallRow.output_tokens).label("pout"))
                .group_by(LlmCallRow.thread_id).subquery()
            )
            stmt = select(ThreadBudgetRow, func.coalesce(used.c.pin, 0), func.coalesce(used.c.pout, 0)).outerjoin(
                used, used.c.tid == ThreadBudgetRow.thread_id)
            if account is not None:
                stmt = stmt.where(ThreadBudgetRow.account == account)
            if thread_id is not None:
                stmt = stmt.where(ThreadBudgetRow.thread_id == thread_id)
            rows = (await db.execute(stmt)).all()
            return [ThreadBudget(thread_id=b.thread_id, account=b.account, max_tokens=int(b.max_tokens),
                                 prompt_tokens=int(pin), completion_tokens=int(pout)) for b, pin, pout in rows]

    async def thread_tokens(self, thread_id: str) -> tuple[int, int | None]:
        """Tokens the thread used, and its budget (None before its first call)."""
        async with self._sm() as db:
            used = (await db.execute(
                select(func.coalesce(func.sum(LlmCallRow.input_tokens + LlmCallRow.output_tokens), 0))
                .where(LlmCallRow.thread_id == thread_id))).scalar_one()
            budget = await db.get(ThreadBudgetRow, thread_id)
            return int(used), (int(budget.max_tokens) if budget is not None else None)

    async def calls(self, account: str | None = None) -> list[LlmCallRecord]:
        """The call log (oldest first)."""
        async with self._sm() as db:
            stmt = select(LlmCallRow).order_by(LlmCallRow.id)
            if account is not None:
                stmt = stmt.where(LlmCallRow.account == account)
            return [LlmCallRecord(account=r.account, thread_id=r.thread_id, response_id=r.response_id, agent=r.agent,
                                  model=r.model, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                                  cost_usd=r.cost_usd, priced=r.priced, latency_ms=r.latency_ms)
                    for r in (await db.execute(stmt)).scalars()]
