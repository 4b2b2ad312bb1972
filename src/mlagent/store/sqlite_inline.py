"""SQLite for the async engine without a thread hop per call: `sqlite3` run on the event loop.

aiosqlite runs every driver call (cursor, execute, fetch, close, commit) on its own thread:
each is a cross-thread queue put, a future, a wake-up of the loop and a GIL hand-over, and
a statement takes four of them. On a trivial agent run that was a third of the server's
CPU. The calls themselves are tiny (a turn's append: tens of microseconds; WAL with
`synchronous=NORMAL` does not fsync on commit), so here they run where they are awaited.
SQLAlchemy's aiosqlite dialect drives this object exactly as it drives an aiosqlite
connection (`create_async_engine(..., async_creator=connect)`); every coroutine below
finishes without suspending, except in the two cases that could stall the loop:

- **A lock held by another connection.** The connection's busy timeout is 0 on the loop; a
  call that meets `SQLITE_BUSY` (another process writing: `mlagent migrate`, a backup) is
  run again on a worker thread with the full busy timeout, so the loop keeps serving.
- **Bulk writes.** An `executemany` of more than `BULK_ROWS` rows (a group commit of many
  turns' events) runs on a worker thread, as every call did under aiosqlite: the loop keeps
  serving meanwhile, and the engine's one connection stays this transaction's until it is
  done. The operations log writes slices of at most 64 rows, on the loop: a thread costs
  a GIL hand-over around every row (serving/operations.py).
- **Checkpoints.** SQLite's automatic checkpoint would copy the WAL into the database and
  fsync it inside some commit, on the loop. It is off (`wal_autocheckpoint=0`); instead a
  commit that finds the WAL due (`CHECKPOINT_COMMITS` commits or `CHECKPOINT_ROWS` rows
  written since the last one: SQLite's own trigger, 1,000 pages, is not visible from
  Python) waits, still holding the engine's one connection, for a PASSIVE
  checkpoint run on a worker thread through a second connection. Nothing writes meanwhile,
  so the checkpoint completes and the next write restarts the WAL from its start, as the
  automatic one does.

The engine holds one connection (`db.make_engine`), so calls on it never overlap.

`store/direct.py` goes one step further for a store's hottest statements.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

BUSY_TIMEOUT_MS = 30_000
BULK_ROWS = 64
CHECKPOINT_COMMITS = 1000
CHECKPOINT_ROWS = 10_000
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
           "PRAGMA busy_timeout=0", "PRAGMA wal_autocheckpoint=0")

T = TypeVar("T")
log = logging.getLogger(__name__)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY


async def _finish_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a worker thread, waited for even when the caller is cancelled: the
    thread may be using the connection, and nobody else may until it is done."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
            break
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


class InlineCursor:
    """An aiosqlite-shaped cursor over a `sqlite3.Cursor`."""

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: InlineConnection) -> None:
        self._conn = conn
        self._cursor = conn._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await self._conn._call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        await self._conn._call_many(self._cursor.executemany, sql, list(parameters))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Inline:
    """What SQLAlchemy's aiosqlite adapter reaches for in aiosqlite's internals to set the
    isolation level (`_tx.put_nowait((future, function))`): run the function at once."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineConnection:
    """An aiosqlite-shaped connection whose calls run on the caller's thread (module doc)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = sqlite3.connect(path, timeout=0, check_same_thread=False)
        for pragma in PRAGMAS:
            self._db.execute(pragma)
        self._tx = _Inline()
        self._commits = 0
        self._rows_at_checkpoint = 0
        self._checkpointer: sqlite3.Connection | None = None

    # aiosqlite's names for the underlying connection, which the dialect uses
    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._db

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError("no active connection")
        return self._db

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        return await _finish_in_thread(self._patiently, fn, *args)

    async def _call_many(self, fn: Callable[[str, list[Any]], T], sql: str, rows: list[Any]) -> T:
        """An `executemany`: on the loop when small, on a worker thread past `BULK_ROWS` rows."""
        if len(rows) <= BULK_ROWS:
            return await self._call(fn, sql, rows)
        return await _finish_in_thread(self._patiently, fn, sql, rows)

    def _patiently(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` with SQLite's busy handler waiting for the lock (on a worker thread)."""
        db = self._conn
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            return fn(*args)
        finally:
            db.execute("PRAGMA busy_timeout=0")

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        cursor = InlineCursor(self)
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        await self._call(self._conn.commit)
        self._commits += 1
        rows = self._conn.total_changes
        if self._commits >= CHECKPOINT_COMMITS or rows - self._rows_at_checkpoint >= CHECKPOINT_ROWS:
            self._commits, self._rows_at_checkpoint = 0, rows
            await _finish_in_thread(self._checkpoint)

    async def rollback(self) -> None:
        await self._call(self._conn.rollback)

    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint through a connection of its own (worker thread only). It
        follows a commit that succeeded: a failure is logged, never the commit's."""
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.warning("SQLite checkpoint failed; the next one retries", exc_info=True)

    async def create_function(self, name: str, num_params: int, func: Callable[..., Any], *,
                              deterministic: bool = False) -> None:
        self._conn.create_function(name, num_params, func, deterministic=deterministic)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]  # sqlite3's stub omits None

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close both connections (the last one to close checkpoints the WAL away)."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._db is not None:
            self._db.close()
            self._db = None


async def connect(path: str) -> InlineConnection:
    return InlineConnection(path)


_ENGINES: weakref.WeakSet[AsyncEngine] = weakref.WeakSet()


def make_engine(url: str, path: str) -> AsyncEngine:
    """The async engine of the SQLite database at `path`, on one `InlineConnection`."""
    engine = create_async_engine(url, async_creator=lambda: connect(path), pool_size=1, max_overflow=0,
                                 pool_timeout=60)
    _ENGINES.add(engine)
    return engine


def is_inline(engine: AsyncEngine) -> bool:
    """Whether `engine` was made by `make_engine` here."""
    return engine in _ENGINES
