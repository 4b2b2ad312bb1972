"""The migration history has one head, and start-up reaches it from an empty database and from the old four heads."""

from __future__ import annotations

import sqlite3

from alembic import command
from alembic.script import ScriptDirectory

from mlagent.store.db import _alembic_config, migrate_sync


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
