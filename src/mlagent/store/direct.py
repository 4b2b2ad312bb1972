"""A store's hottest statements straight on the SQLite connection (`store/sqlite_inline.py`).

A Core statement is compiled once with the engine's dialect, its parameters converted by
SQLAlchemy's own bind processors, and run on the inline connection inside one pool
checkout; the transaction is begun and committed by SQLAlchemy. SQLAlchemy's
per-statement execution (a greenlet, an execution context, a cursor result: ~35-60 us a
statement) is skipped; its SQL, types, pool, events and exceptions are not. PostgreSQL
keeps SQLAlchemy's path: `Direct.of(engine)` is None for any engine but an inline one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from .sqlite_inline import InlineConnection, is_inline

_GIVEN = object()  # a parameter the caller gives


class Compiled:
    """A Core statement compiled once for a dialect: its SQL, and its parameters and result
    columns converted by SQLAlchemy's own type processors (JSON to text and back, ...)."""

    __slots__ = ("_binds", "_results", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect, keys: Sequence[str] | None = None) -> None:
        compiled = cast(SQLCompiler, stmt.compile(dialect=dialect,
                                                  column_keys=list(keys) if keys is not None else None))
        if compiled.post_compile_params:  # an expanding IN: its SQL is made per execution
            raise ValueError("a statement with post-compile parameters cannot be compiled once")
        self.sql = compiled.string
        # (name, type processor, the value the statement itself carries: `status="queued"` in its text)
        self._binds = [(name, bind.type.bind_processor(dialect), _GIVEN if bind.required else bind.effective_value)
                       for name in compiled.positiontup or () for bind in (compiled.binds[name],)]
        columns: Sequence[Any] = getattr(stmt, "exported_columns", None) or ()  # a SELECT's, or RETURNING
        self._results = [column.type.result_processor(dialect, None) for column in columns]

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, process, literal in self._binds:
            value = values[name] if literal is _GIVEN else literal
            out.append(value if process is None else process(value))
        return tuple(out)

    def row(self, row: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if process is None else process(value) for process, value in zip(self._results, row,
                                                                                             strict=True))


class Direct:
    """Statements run straight on an inline engine's connection (module doc). `of(engine)`
    is None for any other engine (PostgreSQL): the caller keeps SQLAlchemy's path."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect = engine.dialect

    @classmethod
    def of(cls, engine: AsyncEngine) -> Direct | None:
        return cls(engine) if is_inline(engine) else None

    def compile(self, stmt: ClauseElement, keys: Sequence[str] | None = None) -> Compiled:
        return Compiled(stmt, self.dialect, keys)

    @asynccontextmanager
    async def connection(self, commit: bool = False) -> AsyncIterator[DirectConnection]:
        """The engine's connection for a few statements; with `commit`, one transaction,
        committed on leaving (rolled back on an error) by SQLAlchemy, so its events and
        bookkeeping see it as they see any other."""
        async with self._engine.begin() if commit else self._engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            if not isinstance(driver, InlineConnection):  # pragma: no cover - `of` admits inline engines only
                raise TypeError("not an inline SQLite connection")
            yield DirectConnection(driver)


class DirectConnection:
    """Statements on the connection; a driver error comes out as SQLAlchemy's own exception
    (`IntegrityError`, ...), as it does from SQLAlchemy's path."""

    __slots__ = ("_conn",)

    def __init__(self, conn: InlineConnection) -> None:
        self._conn = conn

    async def _run(self, method: Callable[..., sqlite3.Cursor], stmt: Compiled, params: Any) -> sqlite3.Cursor:
        try:
            return await self._conn._call(method, stmt.sql, params)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(stmt.sql, params, exc, sqlite3.Error) from exc

    async def execute(self, stmt: Compiled, values: Mapping[str, Any]) -> int:
        """Run a write; the rows it changed."""
        return (await self._run(self._conn._conn.execute, stmt, stmt.params(values))).rowcount

    async def executemany(self, stmt: Compiled, rows: Iterable[Mapping[str, Any]]) -> None:
        params = [stmt.params(row) for row in rows]
        try:
            await self._conn._call_many(self._conn._conn.executemany, stmt.sql, params)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(stmt.sql, params, exc, sqlite3.Error) from exc

    async def first(self, stmt: Compiled, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row a read (or a write with RETURNING) gives, converted; None if none."""
        cursor = await self._run(self._conn._conn.execute, stmt, stmt.params(values))
        rows = cursor.fetchall()  # to the end: a RETURNING write is complete before its commit
        return stmt.row(rows[0]) if rows else None
