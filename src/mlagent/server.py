"""The composition root: builds the stores, runtime and services, and the app around them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Sequence

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .agent.tools.base import Tool, ToolSet
from .agent.tools.delegate import DelegateTool
from .agent.tools.hubclient import HubClient
from .agent.tools.plan import PlanTool
from .agent.tools.registry import ModelRegistryPort
from .agent.tools.toolbox import Toolbox, build_toolbox
from .auth.api_keys import ApiKeys
from .auth.hf_tokens import HfTokenValidator
from .blobs import open_blob_store
from .config import Settings
from .events.bus import EventBus
from .finetune.hf import HfBackend
from .finetune.local import LocalBackend
from .finetune.service import FineTuningService
from .finetune.stored import FineTuneBlobs
from .jobs.replica import replica_id
from .mlconnector.agent_port import MLConnectorPort
from .mlconnector.build import build_mlconnector
from .observability import metrics, tracing
from .observability.context import valid_request_id
from .organism.roster import AgentRoster
from .organism.spec import OrganismError
from .runtime.approvals import ApprovalsService
from .runtime.finished import FinishedResponses
from .runtime.ids import new_id
from .runtime.keeper import Keeper, recover_on_start
from .runtime.live import LiveSessions
from .runtime.operator import OperatorService
from .runtime.runner import TurnRunner
from .runtime.service import ResponsesService
from .runtime.snapshots import WorkspaceSnapshots
from .runtime.stored import StoredRequest
from .runtime.turnqueue import TurnQueue
from .runtime.workspaces import WorkspaceSweeper
from .services import Services
from .store.approvals import ApprovalStore
from .store.db import PoolSettings, make_engine, migrate, sessionmaker
from .store.finetune import FineTuneStore
from .store.notify import EventNotifier, PgListener
from .store.pauses import PauseStore
from .store.sessions import AccountStore, SessionStore
from .store.threads import ThreadStore
from .store.turns import TurnStore
from .store.usage import UsageStore
from .tasks.catalogue import ModelCatalogue
from .tasks.service import TasksService
from .tasks.tools import ToolCatalogue, restrict_tools
from .usage.estimates import job_cost, sandbox_cost
from .usage.hardware import JobHardware
from .usage.prices import PriceTable, load_prices
from .usage.service import UsageService

log = logging.getLogger("mlagent")


def default_toolset(request: StoredRequest | None, toolbox: Toolbox | None = None,
                    extra: Sequence[Tool] = ()) -> ToolSet:
    tools = [PlanTool(), DelegateTool(), *extra]
    if toolbox is None:
        return ToolSet(tools)
    return ToolSet([*tools, *toolbox.tools], finishers=[toolbox.finish])


def agent_toolbox(settings: Settings, prices: PriceTable, registry: ModelRegistryPort | None = None,
                  hardware: JobHardware | None = None) -> Toolbox:
    """The Hub, sandbox, jobs, research and (given the MLConnector) model-registry tools."""
    from .sandbox import Limits, Sandbox

    limits = Limits(cpu_seconds=settings.sandbox_cpu_seconds, memory_mb=settings.sandbox_memory_mb,
                    max_processes=settings.sandbox_max_processes, file_size_mb=settings.sandbox_file_size_mb,
                    wall_seconds=settings.sandbox_wall_seconds, disk_mb=settings.sandbox_disk_mb)
    sandbox = Sandbox(settings.data_dir / "sandboxes", limits, settings.sandbox_isolation)
    log.info("sandbox isolation: %s", sandbox.isolation)
    hub = HubClient(settings.hf_endpoint, settings.dataset_viewer_url)
    return build_toolbox(hub, sandbox, job_poll_seconds=settings.job_poll_seconds,
                         trackio=settings.trackio_dashboards, research_max_tokens=settings.research_max_tokens,
                         job_price=lambda flavor, seconds: job_cost(prices, flavor, seconds).usd,
                         sandbox_price=lambda seconds: sandbox_cost(prices, seconds).usd,
                         registry=registry, hardware=hardware)


# Imported lazily (not needed to start or to answer a probe), warmed once the server listens.
WARM_IMPORTS = ("openai", "jsonschema", "huggingface_hub.hf_api",  # hf_api: HfApi, errors, httpx
                "mlagent.serving.inputs", "mlagent.serving.compiled", "mlagent.serving.rowcodec")  # NumPy: predict


def listening(app: FastAPI) -> threading.Thread:
    """Called once the HTTP server listens (`mlagent serve`, cli.py): the work that need not hold
    up readiness starts now, in the background — the Hub's hardware catalogue is fetched and the
    first agent run's modules imported. Answers the warm-up thread."""
    start_background = getattr(app.state, "start_background", None)
    if start_background is not None:
        start_background()
    return warm_imports()


def warm_imports() -> threading.Thread:
    """Import what the first agent run needs in a background thread, after the server is up:
    start-up does not wait for it, and the first run does not import it on the event loop.
    Then the cyclic garbage collector, off while starting (cli.main), collects once and is on,
    and what start-up made (modules, classes, the app) is frozen: CPython's full collections
    walked those 200,000+ objects on every pass, 240-330 ms with the event loop stopped, once
    every ~20 s under predict load (docs/performance.md, "Predict"). `gc.freeze` only moves
    them out of the collector's lists; garbage made later is collected as before."""
    def run() -> None:
        try:
            for name in WARM_IMPORTS:
                try:
                    importlib.import_module(name)
                except ImportError:  # pragma: no cover - a dependency of the package
                    log.warning("could not import %s ahead of the first run", name)
        finally:
            if not gc.isenabled():
                gc.collect()
            gc.freeze()
            gc.enable()

    thread = threading.Thread(target=run, name="warm-imports", daemon=True)
    thread.start()
    return thread


def _request_shutdown(app: FastAPI) -> None:
    """Ask the HTTP server to shut down gracefully (cli.py wires it; else SIGTERM ourselves)."""
    hook = getattr(app.state, "request_shutdown", None)
    if hook is not None:
        hook()
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def create_app(settings: Settings | None = None, *, extra_tools: Sequence[Tool] = ()) -> FastAPI:
    """The app; `extra_tools` join every agent's tool set (a test seam: tests/job_tool_server.py)."""
    from . import ui
    from .api import (
        approvals as approvals_api,
        config as config_api,
        deployments as deployments_api,
        errors,
        ml_api,
        openapi,
        operator as operator_api,
        ops as ops_api,
        registry as registry_api,
        responses,
        sessions as sessions_api,
        tasks as tasks_api,
        training as training_api,
        usage as usage_api,
    )
    from .api.finished import FinishedResponsesShortcut
    from .api.limits import BodyLimits, RequestLimits
    from .api.predict_shortcut import PredictShortcut

    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tracing.setup()  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
        url = settings.resolved_database_url
        await migrate(url)
        engine = make_engine(url, PoolSettings(settings.db_pool_size, settings.db_max_overflow,
                                               settings.db_pool_timeout_seconds, settings.db_pool_recycle_seconds,
                                               settings.db_pool_pre_ping))
        sm = sessionmaker(engine)
        notify = settings.pg_notify and not url.startswith("sqlite")
        origin = new_id("proc")  # this process, in NOTIFY payloads: its own need no wake-up
        turns = TurnStore(sm, EventNotifier(origin) if notify else None)
        sessions, accounts = SessionStore(sm), AccountStore(sm)
        # The tails' safety re-read of their logs (one timer, one statement): only where another
        # process may write it; on SQLite every write passes this process's bus.
        tail_poll = None if url.startswith("sqlite") else settings.tail_poll_seconds or (5.0 if notify else 1.0)
        bus = EventBus(turns.last_seqs, tail_poll)
        # Finished responses' bytes, kept while every delete is heard: always on SQLite (one
        # process), on PostgreSQL only while the listener hears the deletes' NOTIFY.
        finished = (FinishedResponses() if url.startswith("sqlite")
                    else FinishedResponses(enabled=False) if notify else None)
        listener = PgListener(url, origin, bus.wake, bus.wake_all, finished) if notify else None
        live = LiveSessions(settings.max_sessions_per_account, settings.max_sessions_global,
                            settings.session_reclaim_seconds)
        usage, prices = UsageStore(sm), load_prices(settings.price_table)
        hardware = JobHardware(settings.hf_endpoint, prices, settings.jobs_hardware_ttl_seconds)
        background: list[asyncio.Task[object]] = []

        def start_background() -> None:  # once the server listens (`listening`): nothing here gates readiness
            background.append(asyncio.create_task(hardware.refresh(), name="jobs-hardware"))

        app.state.start_background = start_background
        blobs = await asyncio.to_thread(open_blob_store, settings.blob_url, settings.data_dir,
                                        s3_endpoint_url=settings.s3_endpoint_url)
        mlconnector = await build_mlconnector(settings, sm, blobs)  # before the tools: the agent is its client
        port = MLConnectorPort(mlconnector.registry, mlconnector.deployments, settings.resolved_public_url)
        toolbox = await asyncio.to_thread(agent_toolbox, settings, prices, port, hardware)
        toolset_for = functools.partial(default_toolset, toolbox=toolbox, extra=extra_tools)
        all_tools = toolset_for(None)
        try:
            agents = AgentRoster(settings.organism_path, all_tools.names(), settings.model_ids, PauseStore(sm))
        except OrganismError as exc:
            log.error("cannot start: the organism file is broken: %s", exc.reason)
            await mlconnector.close()
            raise RuntimeError(f"organism file: {exc.reason}") from None
        await agents.restore()  # pauses from before the restart, before any turn is admitted
        workspaces = (WorkspaceSnapshots(blobs, toolbox.sandbox, settings.workspace_snapshot_max_mb << 20)
                      if settings.blob_url and toolbox.sandbox is not None else None)  # shared: they follow the session
        runner = TurnRunner(settings, turns, sessions, bus, live, restrict_tools(toolset_for), usage=usage,
                            prices=prices, agents=agents, workspaces=workspaces)
        await recover_on_start(turns, bus, single_process=url.startswith("sqlite"))
        sweeper = (WorkspaceSweeper(toolbox.sandbox, sessions, live, settings.sandbox_retention_hours * 3600)
                   if toolbox.sandbox is not None else None)
        keeper = Keeper(turns, bus, live, runner, settings.lease_seconds, settings.idle_eviction_seconds, sweeper)
        finetune_store = FineTuneStore(sm)
        finetune_blobs = FineTuneBlobs(blobs, settings.data_dir)
        # The trainer runs on the job backend of `/mltraining` jobs, in the same sandbox and limits.
        finetune_backend = LocalBackend(finetune_store, finetune_blobs, mlconnector.trainings.backend,
                                        isolation=settings.sandbox_isolation, owner=replica_id(settings.data_dir, settings.replica_id),
                                        lease_seconds=settings.lease_seconds, max_processes=settings.job_max_processes,
                                        file_size_mb=settings.job_file_size_mb, disk_mb=settings.sandbox_disk_mb)
        await finetune_backend.recover()
        finetune_backend.start()
        finetune_hf = HfBackend(finetune_store, prices, settings.hf_endpoint, settings.job_poll_seconds,
                                hardware=hardware)
        queue = TurnQueue(settings, turns, accounts, bus, live, runner)
        responses_service = ResponsesService(settings, turns, sessions, bus, live, runner, queue, finished)
        metrics.know(models=[*settings.model_ids, settings.default_model_id], tools=all_tools.names())
        metrics.SNAPSHOT.live_sessions = live.count

        def default_thread_budget() -> int:  # the default agent's token_budget, else the setting
            spec = agents.get("ml-agent")
            return spec.token_budget if spec is not None else settings.thread_token_budget

        approvals = ApprovalsService(turns, sessions, ApprovalStore(sm), usage, queue)
        app.state.services = Services(
            settings=settings,
            hf_tokens=HfTokenValidator(settings.hf_endpoint, settings.whoami_cache_seconds),
            api_keys=ApiKeys(settings.agent_api_key, settings.api_keys_file, settings.operator_key,
                                    settings.is_loopback),
            responses=responses_service,
            approvals=approvals,
            usage=UsageService(usage, default_thread_budget),
            operator=OperatorService(settings, agents, all_tools, ThreadStore(sm), turns, sessions, bus, live, runner,
                                     queue, responses_service, shutdown=lambda: _request_shutdown(app)),
            tasks=TasksService(settings, responses_service, accounts, ToolCatalogue(lambda: toolset_for(None).names()),
                               approvals),
            models=ModelCatalogue(settings),
            finetune=FineTuningService(settings, finetune_store, finetune_backend, finetune_blobs, finetune_hf),
            registry=mlconnector.registry,
            deployments=mlconnector.deployments,
            monitoring=mlconnector.monitoring,
            trainings=mlconnector.trainings,
        )
        grpc_server = getattr(app.state, "grpc_server", None)  # bound by `mlagent serve` before start-up
        if grpc_server is None and settings.grpc_port:
            from .grpc.server import GrpcServer

            grpc_server = GrpcServer(settings.host, settings.grpc_port)
        if grpc_server is not None:
            try:
                await grpc_server.start(app.state.services)
            except RuntimeError as exc:  # grpc.server.PortInUse: a clear message, no half-started server
                log.error("cannot start: %s", exc)
                await mlconnector.close()
                raise
        from .observability.probes import Probes

        app.state.probes = Probes(engine, sm, listener, grpc_server, settings.metrics_token)
        keeper_task = asyncio.create_task(keeper.run_forever(), name="keeper")
        listener_task = asyncio.create_task(listener.run_forever(), name="event-listener") if listener else None
        # `mlagent serve` logs "ready" once the HTTP port serves too (cli.py).
        log.info("application started (database: %s)", "sqlite" if url.startswith("sqlite") else "postgresql")
        try:
            yield
        finally:
            keeper_task.cancel()
            for task in background:
                task.cancel()
            if listener_task is not None:
                listener_task.cancel()
                await asyncio.gather(listener_task, return_exceptions=True)
            if grpc_server is not None:
                await grpc_server.stop()
            await finetune_backend.shutdown()
            await finetune_hf.shutdown()
            await mlconnector.close()
            await runner.shutdown()
            await bus.close()
            await engine.dispose()
            tracing.shutdown()

    app = FastAPI(title="mlagent", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    errors.install(app)
    openapi.install(app)
    app.add_middleware(FinishedResponsesShortcut)  # innermost: its answers get CORS and X-Request-ID too
    app.add_middleware(PredictShortcut)  # likewise (the two never take the same request)
    app.add_middleware(RequestLimits, limits=BodyLimits.from_settings(settings))  # inside CORS: 413s carry it
    # The probes first: FastAPI builds a router's route state when a request first walks past it,
    # so a /healthz behind every API router would build them all before the first 200 (~0.3 CPU-s).
    app.include_router(ops_api.router)
    app.include_router(deployments_api.router)  # next: predict is the hottest route (routes match in order)
    app.include_router(responses.router)  # then reading a response (its paths overlap no router's above or below)
    app.include_router(registry_api.router)
    app.include_router(training_api.router)
    app.include_router(sessions_api.router)
    app.include_router(config_api.router)
    app.include_router(approvals_api.router)
    app.include_router(usage_api.router)
    app.include_router(tasks_api.api_router)
    app.include_router(tasks_api.ninja_router)
    app.include_router(ml_api.router)
    if settings.cors_origin_list:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origin_list, allow_methods=["*"],
                           allow_headers=["*"], allow_credentials=False, max_age=600)
    app.include_router(operator_api.router)
    ui.install(app)  # /ui and the offline /docs, /redoc
    operator_api.install_stop_guard(app)
    # Outermost: every response (errors and CORS preflights too) carries X-Request-ID.
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID", validator=valid_request_id,
                       update_request_header=False)
    return app
