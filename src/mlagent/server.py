"""The composition root: builds the stores, runtime and services, and the app around them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from .agent.tools.base import ToolSet
from .agent.tools.plan import PlanTool
from .auth.api_keys import ApiKeyRegistry
from .auth.hf_tokens import HfTokenValidator
from .config import Settings
from .events.bus import EventBus
from .runtime.keeper import Keeper, recover_on_start
from .runtime.approvals import ApprovalsService
from .runtime.live import LiveSessions
from .runtime.runner import TurnRunner
from .runtime.service import ResponsesService
from .services import Services
from .store.db import make_engine, migrate, sessionmaker
from .store.sessions import AccountStore, SessionStore
from .store.turns import TurnStore
from .store.approvals import ApprovalStore
from .store.usage import UsageStore
from .usage.prices import load_prices
from .usage.service import UsageService

log = logging.getLogger("mlagent")


def default_toolset(request: dict[str, Any]) -> ToolSet:
    return ToolSet([PlanTool()])


def create_app(settings: Settings | None = None) -> FastAPI:
    from .api import config as config_api
    from .api import approvals as approvals_api
    from .api import errors, responses
    from .api import usage as usage_api

    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        await migrate(url)
        engine = make_engine(url)
        sm = sessionmaker(engine)
        turns, sessions, accounts = TurnStore(sm), SessionStore(sm), AccountStore(sm)
        bus = EventBus()
        live = LiveSessions(settings.max_sessions_per_account, settings.max_sessions_global)
        usage, prices = UsageStore(sm), load_prices(settings.price_table)
        runner = TurnRunner(settings, turns, sessions, bus, live, default_toolset, usage=usage, prices=prices)
        await recover_on_start(turns, bus, single_process=url.startswith("sqlite"))
        keeper = Keeper(turns, bus, live, runner, settings.lease_seconds, settings.idle_eviction_seconds)
        app.state.services = Services(
            settings=settings,
            hf_tokens=HfTokenValidator(settings.hf_endpoint, settings.whoami_cache_seconds),
            api_keys=ApiKeyRegistry(settings.agent_api_key, settings.api_keys_file, settings.operator_key,
                                    settings.is_loopback),
            responses=ResponsesService(settings, turns, sessions, accounts, bus, live, runner),
        )
        app.state.services.approvals = ApprovalsService(turns, sessions, ApprovalStore(sm), usage, bus, live, runner,
                                                        settings.lease_seconds)
        app.state.services.usage = UsageService(usage, settings.thread_token_budget)
        keeper_task = asyncio.create_task(keeper.run_forever(), name="keeper")
        log.info("mlagent ready on http://%s:%s (database: %s)", settings.host, settings.port,
                 "sqlite" if url.startswith("sqlite") else "postgresql")
        try:
            yield
        finally:
            keeper_task.cancel()
            await runner.shutdown()
            await engine.dispose()

    app = FastAPI(title="mlagent", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    app.include_router(responses.router)
    app.include_router(config_api.router)
    app.include_router(approvals_api.router)
    app.include_router(usage_api.router)
    return app
