"""Redaction for configuration that operators read over HTTP: no keys, no tokens.

Keys that name a secret are masked whatever their value; string values that look like a
credential (Hugging Face / OpenAI-style tokens, or any secret the server was given) are
masked wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential|authorization)", re.I)
SECRET_VALUE = re.compile(r"\b(hf_[A-Za-z0-9]{8,}|api_org_[A-Za-z0-9]{8,}|sk-[A-Za-z0-9_-]{8,})\b")


def url_without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def sanitise(config: dict[str, Any], secrets: Iterable[str | None] = ()) -> dict[str, Any]:
    """`config` with its secrets masked, at any depth (a copy)."""
    return _walk_dict(config, [s for s in secrets if s])


def _walk_dict(value: dict[Any, Any], secrets: list[str]) -> dict[Any, Any]:
    return {k: (MASK if SECRET_KEY.search(str(k)) and not _harmless(v) else _walk(v, secrets))
            for k, v in value.items()}


def _walk(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, dict):
        return _walk_dict(value, secrets)
    if isinstance(value, list):
        return [_walk(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return SECRET_VALUE.sub(MASK, value)
    return value


def _harmless(value: Any) -> bool:
    """Numbers, booleans and nulls under a secret-sounding key (e.g. `token_budget`) stay."""
    return value is None or isinstance(value, (bool, int, float))
