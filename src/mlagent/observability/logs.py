"""Logging set-up: `MLAGENT_LOG_FORMAT=json|text`, every line with its request id and account."""

from __future__ import annotations

import logging
import sys

from . import context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s %(request_id)s %(account)s"


class ContextFilter(logging.Filter):
    """Adds `request_id` and `account` (from contextvars) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = context.request_id() or "-"
        if not hasattr(record, "account") or record.account is None:
            record.account = context.account.get() or "-"
        return True


def setup(level: str = "info", fmt: str = "text") -> None:
    """One stderr handler on the root logger; uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"},
                                           timestamp="time"))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # library warnings become log lines in the same format
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
