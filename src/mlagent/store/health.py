"""What /readyz and /metrics ask the database: is it reachable, is its schema at the
migration head, and a few counts (approvals pending, jobs by backend and state)."""

from __future__ import annotations

from functools import cache

from sqlalchemy import String, cast, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .db import MIGRATIONS_DIR
from .finetune import FineTuningJob
from .registry_tables import TrainingRow
from .tables import Session, Turn


@cache
def head_revision() -> str:
    """The single head of the migrations this code ships (read once from the scripts)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    return ",".join(sorted(heads))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's migration revision (one round trip; raises when it is unreachable)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    return ",".join(sorted(rows)) or None


async def approvals_pending(sm: async_sessionmaker[AsyncSession]) -> int:
    """Sessions whose latest response waits for an approval (a paused turn with its batch stored)."""
    pending = Session.pending.is_not(None) & (cast(Session.pending, String) != "null")
    q = (select(func.count(func.distinct(Session.id))).select_from(Turn).join(Session, Session.id == Turn.session_id)
         .where(Turn.status == "incomplete", pending))
    async with sm() as db:
        return int((await db.execute(q)).scalar_one())


async def jobs_by_state(sm: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str, str], int]:
    """(kind, backend, state) -> count, for fine-tuning jobs and model trainings."""
    out: dict[tuple[str, str, str], int] = {}
    async with sm() as db:
        for kind, table in (("finetune", FineTuningJob), ("training", TrainingRow)):
            q = select(table.backend, table.status, func.count()).group_by(table.backend, table.status)
            for backend, status, count in (await db.execute(q)).all():
                out[(kind, backend, status)] = int(count)
    return out
