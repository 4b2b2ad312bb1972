"""Engine and session factory for SQLite (WAL) or PostgreSQL, plus running migrations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    Column,
    Connection,
    CursorResult,
    MetaData,
    PrimaryKeyConstraint,
    Result,
    String,
    Table,
    event,
    inspect,
    text,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from . import sqlite_inline

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SCHEMA_HEAD = "0008_finetune_keys"
"""The single head of the migrations (a test checks it against the scripts): a new migration
changes it."""


@dataclass(frozen=True)
class PoolSettings:
    """PostgreSQL's connection pool (docs/operating.md, "Database connections")."""

    size: int = 20  # kept open: a burst does not open and close overflow connections
    max_overflow: int = 10  # opened beyond `size` under load, closed when returned
    timeout: float = 30.0  # the longest a statement waits for a connection; then a 503 or a retry
    recycle: float = 1800.0  # a connection older than this is replaced on checkout (-1: never)
    pre_ping: bool = False  # a round trip per checkout; a dead connection is handled when used instead


def make_engine(url: str, pool: PoolSettings | None = None) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has one writer anyway, and queueing in asyncio is far
        # cheaper than SQLite's busy handler, which sleeps in steps of up to 100 ms. Its
        # calls run on the event loop, not on aiosqlite's thread (store/sqlite_inline.py).
        if "?" not in path:
            return sqlite_inline.make_engine(url, path or ":memory:")
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # No pre-ping by default: it cost a round trip on every checkout (bench/pg_pool.py). A
    # connection the server dropped fails its statement instead; SQLAlchemy then discards
    # every pooled connection older than it, and that one failure is a passing one
    # (store/transient.py): retried by the worker and the streams, a 503 for a request.
    pool = pool or PoolSettings()
    return create_async_engine(url, pool_size=pool.size, max_overflow=pool.max_overflow, pool_timeout=pool.timeout,
                               pool_recycle=pool.recycle, pool_pre_ping=pool.pre_ping)


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an UPDATE or DELETE matched. `AsyncSession.execute` is typed to return a
    `Result`; what it returns for those statements is a `CursorResult`, which has the count."""
    return cast(CursorResult[*tuple[Any, ...]], result).rowcount


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate_sync(url: str) -> None:
    """Apply every migration up to the single head. Safe to call on every start-up."""
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


def _version_table() -> Table:
    """Alembic's own `alembic_version` table, as `MigrationContext` creates it."""
    return Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


def _prepare(conn: Connection) -> bool:
    """In one transaction: create an empty database's schema from the tables' metadata and
    stamp it at `SCHEMA_HEAD` (Alembic's "create_all + stamp" recipe; tests/test_migrations.py
    proves it equals the migrated schema). True when nothing is left for Alembic to do: the
    database was empty, or is already at the head."""
    if conn.dialect.name == "sqlite":  # the driver would run DDL outside any transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    names = inspect(conn).get_table_names()
    if not names:
        from . import finetune, registry_tables, usage  # noqa: F401 — every module that defines tables
        from .tables import Base

        Base.metadata.create_all(conn)
        version = _version_table()
        version.create(conn)
        conn.execute(version.insert().values(version_num=SCHEMA_HEAD))
        return True
    if "alembic_version" not in names:
        return False
    return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))] == [SCHEMA_HEAD]


MIGRATION_LOCK = 0x6D6C6167656E74  # "mlagent": the PostgreSQL advisory lock `migrate` holds
"""One key for every replica of every version: whoever holds it is the one migrating."""


async def migrate(url: str) -> None:
    """Bring the database to the head: an empty one is created at it and an up-to-date one
    is left alone, both without importing Alembic (its import and a replay of every migration
    cost a fresh server ~0.35 CPU-s); any other is upgraded through the migrations.

    On PostgreSQL, replicas starting together take turns: each holds a session advisory lock
    for the whole of it, so the second finds the first's work done instead of creating the
    same tables (or replaying the same migration) beside it. SQLite's `BEGIN IMMEDIATE` in
    `_prepare` does the same for processes sharing a file."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as lock:
            if lock.dialect.name == "postgresql":
                await lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
                await lock.commit()
            async with engine.begin() as conn:
                done = await conn.run_sync(_prepare)
            if not done:
                await asyncio.to_thread(migrate_sync, url)
            # Closing the connection ends its session, and with it the advisory lock.
    finally:
        await engine.dispose()
