"""The migration history has one head, and start-up reaches it from an empty database and from the old four heads."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from mlagent.store.db import SCHEMA_HEAD, _alembic_config, migrate, migrate_sync

from .conftest import PG_SKIP, PG_URL
from .harness import create_pg_database, drop_pg_database


def _heads() -> list[str]:
    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_heads()


def test_one_head() -> None:
    heads = _heads()
    assert len(heads) == 1, f"the migration history must have one head, found {heads}"


def _versions(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}


def test_database_on_the_old_heads_upgrades_to_one(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    for head in ("0002_registry", "0003_usage", "0004_finetune_hub", "0005_paused_agents"):
        command.upgrade(_alembic_config(url), head)
    assert _versions(tmp_path / "old.db") == {"0002_registry", "0003_usage", "0004_finetune_hub", "0005_paused_agents"}
    migrate_sync(url)
    assert _versions(tmp_path / "old.db") == set(_heads())


def test_empty_database_reaches_the_head(tmp_path) -> None:
    migrate_sync(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    assert _versions(tmp_path / "new.db") == set(_heads())


def test_fine_tuning_paths_become_blob_keys(tmp_path) -> None:
    """Rows from before 0008 named files by absolute path; they now name blob keys (the same
    files, relative to the data directory)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ft.db'}"
    command.upgrade(_alembic_config(url), "0007_job_leases")
    with sqlite3.connect(tmp_path / "ft.db") as conn:
        conn.execute("INSERT INTO uploaded_files VALUES ('file-1', 'acct', 't.jsonl', 'fine-tune', 3, 'ab', "
                     "'/data/files/file-1', 1.0)")
        conn.execute("INSERT INTO fine_tuning_jobs (id, account, model_id, status, training_file, compute_config, "
                     "backend, output_dir, created_at, updated_at) VALUES ('ft-1', 'acct', 'tiny-gpt2', 'succeeded', "
                     "'file-1', '{}', 'local', '/data/finetune/ft-1', 1.0, 1.0), ('ft-2', 'acct', 'tiny-gpt2', "
                     "'created', 'file-1', '{}', 'local', NULL, 1.0, 1.0)")
    migrate_sync(url)
    with sqlite3.connect(tmp_path / "ft.db") as conn:
        assert conn.execute("SELECT path FROM uploaded_files").fetchall() == [("files/file-1",)]
        assert conn.execute("SELECT id, output_dir FROM fine_tuning_jobs ORDER BY id").fetchall() == [
            ("ft-1", "finetune/ft-1"), ("ft-2", None)]


def test_schema_head_names_the_migrations_head() -> None:
    """Start-up creates an empty database at `SCHEMA_HEAD` without reading the scripts."""
    assert _heads() == [SCHEMA_HEAD]


def _schema(conn: Connection) -> dict[str, Any]:
    """Every table's columns, keys, indexes and constraints, as the database reports them."""
    insp = inspect(conn)
    out: dict[str, Any] = {}
    for t in insp.get_table_names():
        out[t] = {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                              for c in insp.get_columns(t)),
            "pk": (insp.get_pk_constraint(t)["constrained_columns"], insp.get_pk_constraint(t).get("name")),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                           str(f.get("options"))) for f in insp.get_foreign_keys(t)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
            "uniques": sorted((u["name"] or "", tuple(u["column_names"])) for u in insp.get_unique_constraints(t)),
        }
    out["alembic_version rows"] = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    return out


def _against_metadata(conn: Connection) -> list[Any]:
    from mlagent.store import finetune, registry_tables, usage  # noqa: F401 — every module that defines tables
    from mlagent.store.tables import Base

    opts = {"compare_type": True, "compare_server_default": True}
    return compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)


async def _inspect(url: str) -> tuple[dict[str, Any], list[Any]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_schema), await conn.run_sync(_against_metadata)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_fresh_database_created_at_the_head_equals_the_migrated_one(tmp_path, database) -> None:
    """`migrate` creates an empty database from the tables' metadata and stamps it; that must be
    the schema every migration replayed gives (and what the metadata says), on both databases."""
    if database == "postgresql":
        if not PG_URL:
            pytest.skip(PG_SKIP)
        created, migrated = create_pg_database(PG_URL), create_pg_database(PG_URL)
    else:
        created, migrated = (f"sqlite+aiosqlite:///{tmp_path / 'created.db'}",
                             f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}")
    try:
        asyncio.run(migrate(created))
        migrate_sync(migrated)
        created_schema, created_diff = asyncio.run(_inspect(created))
        migrated_schema, migrated_diff = asyncio.run(_inspect(migrated))
        assert created_diff == [] and migrated_diff == []
        assert created_schema == migrated_schema
        assert created_schema["alembic_version rows"] == [SCHEMA_HEAD]
        asyncio.run(migrate(created))  # at the head: nothing to do, and nothing breaks
        assert asyncio.run(_inspect(created))[0] == created_schema
    finally:
        if database == "postgresql":
            drop_pg_database(PG_URL, created)
            drop_pg_database(PG_URL, migrated)


def test_an_older_database_is_migrated_at_start(tmp_path) -> None:
    """A database behind the head still goes through the migrations (and their data changes)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic_config(url), "0007_job_leases")
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("INSERT INTO uploaded_files VALUES ('file-1', 'acct', 't.jsonl', 'fine-tune', 3, 'ab', "
                     "'/data/files/file-1', 1.0)")
    asyncio.run(migrate(url))
    assert _versions(tmp_path / "old.db") == {SCHEMA_HEAD}
    with sqlite3.connect(tmp_path / "old.db") as conn:
        assert conn.execute("SELECT path FROM uploaded_files").fetchall() == [("files/file-1",)]


def test_replicas_starting_together_on_an_empty_postgresql_database_take_turns() -> None:
    """Several replicas starting at once on one empty database: one creates the schema, the
    others find it at the head (without `migrate`'s advisory lock they all try to create the
    same tables, and all but one fail with "already exists")."""
    if not PG_URL:
        pytest.skip(PG_SKIP)
    url = create_pg_database(PG_URL)

    async def together() -> None:
        await asyncio.gather(*(migrate(url) for _ in range(6)))

    try:
        asyncio.run(together())
        schema, diff = asyncio.run(_inspect(url))
        assert diff == []
        assert schema["alembic_version rows"] == [SCHEMA_HEAD]
    finally:
        drop_pg_database(PG_URL, url)
