"""`mlagent`: the server (`serve`, `migrate`) and the terminal client (`run`, `attach`, `ls`, …).

The client commands live in `mlagent.client` and use the public HTTP API only; this module
builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from . import __version__
from .config import Settings

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


def _serve(settings: Settings) -> None:
    import uvicorn

    from .server import create_app

    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                                           timeout_graceful_shutdown=5))
    # POST /api/v1/organism/stop ends the process through this, exactly as a signal would, but exits 0.
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    server.run()


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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command not in ("serve", "migrate"):
        sys.exit(args.handler(args))  # a client command (mlagent.client)
    overrides: dict[str, Any] = {k: getattr(args, k) for k in SERVE_OPTIONS if getattr(args, k, None) is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    {"serve": _serve, "migrate": _migrate}[args.command](settings)


if __name__ == "__main__":
    main()
