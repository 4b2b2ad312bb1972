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
