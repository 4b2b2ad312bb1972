"""`mlagent serve | migrate`: the command line behind `make serve`."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import Settings


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mlagent", description="ML engineering agent server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP (and gRPC) server; configured by environment variables")
    sub.add_parser("migrate", help="apply database migrations")
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    {"serve": _serve, "migrate": _migrate}[args.command](settings)


if __name__ == "__main__":
    main()
