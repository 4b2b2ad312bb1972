"""`mlagent`: the server (`serve`, `migrate`) and the terminal client (`run`, `attach`, `ls`, …).

The client commands live in `mlagent.client` and use the public HTTP API only; this module
builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import gc
import logging
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import Settings

if TYPE_CHECKING:
    from .agent.tools.base import Tool

# `mlagent serve --host … --port …`: flags that override the environment variable of the same name.
SERVE_OPTIONS: dict[str, tuple[str, type, str]] = {
    "host": ("--host", str, "HTTP listen address"),
    "port": ("--port", int, "HTTP port"),
    "grpc_port": ("--grpc-port", int, "gRPC port (0 disables)"),
    "data_dir": ("--data-dir", str, "database, artifacts, sandboxes"),
    "database_url": ("--database-url", str, "SQLAlchemy URL (default: SQLite in the data dir)"),
    "log_level": ("--log-level", str, "debug, info, warning, error"),
}
MIGRATE_OPTIONS = ("data_dir", "database_url", "log_level")


def settings_environment() -> str:
    """Every environment variable Settings reads, with its default: `serve --help`'s epilog."""
    rows = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [str(c) for c in getattr(alias, "choices", [])] if alias else [f"MLAGENT_{name.upper()}"]
        default = field.default
        shown = "unset" if default is None else ("(built-in list)" if name == "models" else default)
        rows.append(f"  {' | '.join(names):<40} {shown}")
    return "environment variables (flags override them; see README.md, Configuration):\n" + "\n".join(rows)


log = logging.getLogger("mlagent")


class StartupError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


def bind_http(host: str, port: int) -> socket.socket:
    """The HTTP listening socket, bound before anything starts (port 0: a free one). No
    SO_REUSEPORT: a second server on a taken port fails instead of sharing it."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"MLAGENT_HOST {host!r} does not resolve ({exc})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only, not a live listener
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise StartupError(f"the HTTP port {host}:{port} is not available ({exc.strerror}); free it or set "
                           "MLAGENT_PORT to another port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve(settings: Settings, extra_tools: Sequence[Tool] = ()) -> None:
    import uvicorn
    from uvicorn._compat import asyncio_run

    from .server import create_app, listening

    sock = bind_http(settings.host, settings.port)
    settings.port = sock.getsockname()[1]  # the real port (0 picks one): URLs the agent reports use it
    app = create_app(settings, extra_tools=extra_tools)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                grpc = f"gRPC on {settings.host}:{settings.grpc_port}" if settings.grpc_port else "gRPC off"
                log.info("mlagent ready: HTTP on http://%s:%s, %s", settings.host, settings.port, grpc,
                         extra={"event": "server.ready", "http_port": settings.port,
                                "grpc_port": settings.grpc_port or None})
                listening(app)

    config = uvicorn.Config(app, log_level=settings.log_level, log_config=None, timeout_graceful_shutdown=5)
    server = Server(config)
    # POST /api/v1/organism/stop ends the process through this, exactly as a signal would, but exits 0.
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)

    async def run() -> None:
        if settings.grpc_port:  # bound in the server's event loop, before the application starts
            from .grpc.server import GrpcServer, PortInUse

            grpc_server = GrpcServer(settings.host, settings.grpc_port)
            try:
                settings.grpc_port = grpc_server.bind()
            except PortInUse as exc:
                raise StartupError(str(exc)) from None
            app.state.grpc_server = grpc_server
        await server.serve(sockets=[sock])

    try:
        asyncio_run(run(), loop_factory=config.get_loop_factory())
    finally:
        sock.close()


def _migrate(settings: Settings) -> None:
    from .store.db import migrate_sync

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_sync(settings.resolved_database_url)
    print("database is at the latest migration")


def build_parser() -> argparse.ArgumentParser:
    from .client.parser import add_commands, connection_options

    parser = argparse.ArgumentParser(
        prog="mlagent", parents=[connection_options(top_level=True)],
        description="ML engineering agent: the server, and a terminal client for it (docs/cli.md)")
    parser.add_argument("--version", action="version", version=f"mlagent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (("serve", "run the HTTP (and gRPC) server"), ("migrate", "apply database migrations")):
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=argparse.RawDescriptionHelpFormatter,
                           epilog=settings_environment() if name == "serve" else None)
        for field, (flag, kind, text) in SERVE_OPTIONS.items():
            if name == "serve" or field in MIGRATE_OPTIONS:
                p.add_argument(flag, dest=field, type=kind, default=None, help=f"{text} (env MLAGENT_{field.upper()})")
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None, *, extra_tools: Sequence[Tool] = ()) -> None:
    """`extra_tools` join the agent's tools when serving (a test seam: tests/job_tool_server.py)."""
    # Starting a server creates ~230k long-lived objects and ~2k of cyclic garbage: the
    # collector's passes over them cost 0.15-0.2 CPU-s (docs/performance.md, "Start-up,
    # round 3"). `serve` runs without it until the warm-up after listening has collected
    # once (server.warm_imports); other commands turn it back on at once.
    gc.disable()
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        gc.enable()
    if args.command not in ("serve", "migrate"):
        sys.exit(args.handler(args))  # a client command (mlagent.client)
    overrides: dict[str, Any] = {k: getattr(args, k) for k in SERVE_OPTIONS if getattr(args, k, None) is not None}
    settings = Settings(**overrides)
    from .observability import logs

    logs.setup(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            _serve(settings, extra_tools)
        else:
            _migrate(settings)
    except StartupError as exc:
        log.error("cannot start: %s", exc, extra={"event": "server.startup_failed"})
        sys.exit(2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
