"""X-API-Key accounts: `AGENT_API_KEY`, a keys file, and the loopback development key."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import yaml

from .identity import AuthError, Identity

DEV_API_KEY = "dev-api-key"
log = logging.getLogger("mlagent.auth")


class ApiKeys:
    """Maps API keys to accounts. The operator key sees and manages every account."""

    def __init__(
        self,
        agent_api_key: str | None,
        keys_file: Path | None,
        operator_key: str | None,
        loopback: bool,
    ) -> None:
        self._keys: dict[str, tuple[str, bool]] = {}
        if agent_api_key:
            self._keys[agent_api_key] = ("default", False)
        if keys_file:
            for key, entry in (yaml.safe_load(keys_file.read_text()) or {}).items():
                account, operator = (entry, False) if isinstance(entry, str) else (entry["account"], bool(entry.get("operator")))
                self._keys[str(key)] = (str(account), operator)
        if operator_key:
            self._keys[operator_key] = ("operator", True)
        self.dev_mode = not self._keys and loopback
        if self.dev_mode:
            self._keys[DEV_API_KEY] = ("dev", True)
            log.warning(
                "NO API KEY CONFIGURED: the development key %r is accepted because the server "
                "listens on loopback only. Set AGENT_API_KEY before exposing it.",
                DEV_API_KEY,
            )

    def is_operator_key(self, key: str | None) -> bool:
        identity = self.resolve_or_none(key)
        return bool(identity and identity.is_operator)

    def resolve_or_none(self, key: str | None) -> Identity | None:
        if not key:
            return None
        for known, (account, operator) in self._keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return Identity(account=account, kind="api_key", is_operator=operator)
        return None

    def resolve(self, key: str | None) -> Identity:
        if not key:
            raise AuthError("Missing API key: send it in the X-API-Key header.", 401, "missing_api_key")
        identity = self.resolve_or_none(key)
        if identity is None:
            raise AuthError("Invalid API key.", 401, "invalid_api_key")
        return identity
