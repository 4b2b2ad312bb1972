"""Validates Hugging Face tokens against `{HF_ENDPOINT}/api/whoami-v2`, cached by hash.

The cache key is a SHA-256 of the token, so the raw token is never a dict key that a
heap dump or debug print would show next to an account name.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from .identity import AuthError, Identity

if TYPE_CHECKING:
    from huggingface_hub import HfApi

INFERENCE_PERMISSION = "inference.serverless.write"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def own_permissions(info: dict[str, Any]) -> frozenset[str]:
    """What a fine-grained token may do in its user's own namespace: the `global` permissions
    plus those of every `scoped` entry whose entity is that user (matched by id, else by
    name, case-insensitively as the Hub treats names). Entries for orgs or repos grant
    nothing on the user's namespace, so they are not counted."""
    grants = (((info.get("auth") or {}).get("accessToken") or {}).get("fineGrained")) or {}
    perms = {p for p in grants.get("global") or [] if isinstance(p, str)}
    user_id, name = info.get("id"), str(info.get("name", "")).lower()
    for entry in grants.get("scoped") or []:
        entity = (entry or {}).get("entity") or {}
        if entity.get("type") != "user":
            continue
        eid = entity.get("_id") or entity.get("id")
        if (eid is not None and eid == user_id) or str(entity.get("name", "")).lower() == name:
            perms.update(p for p in entry.get("permissions") or [] if isinstance(p, str))
    return frozenset(perms)


def identity_from_whoami(info: dict[str, Any], token: str) -> Identity:
    """Turn a whoami-v2 answer into an Identity, refusing what the seed refuses."""
    if info.get("type") != "user":
        raise AuthError("Organization tokens are not accepted; use a user access token.", 401, "invalid_api_key")
    access = (info.get("auth") or {}).get("accessToken") or {}
    role = access.get("role")
    identity = Identity(account=str(info["name"]), kind="hf", token=SecretStr(token),
                        token_role=role if isinstance(role, str) else None,
                        token_permissions=own_permissions(info) if role == "fineGrained" else frozenset())
    identity.can_use_inference = not identity.missing(INFERENCE_PERMISSION)
    return identity


def _with_token(known: Identity, token: str) -> Identity:
    """This request's identity: a copy of the cached one (validated when it was made) with the
    caller's token, not validated again (~4x cheaper than building it from whoami's answer)."""
    return known.model_copy(update={"token": SecretStr(token)})


class HfTokenValidator:
    def __init__(self, endpoint: str, ttl_seconds: float = 300.0) -> None:
        self._endpoint = endpoint
        self._client: HfApi | None = None  # made on the first validation: huggingface_hub is a slow import
        self._ttl = ttl_seconds
        # token hash -> (expiry, whoami's answer, the identity it gave without its token, or None if refused)
        self._cache: dict[str, tuple[float, dict[str, Any], Identity | None]] = {}

    def _api(self) -> HfApi:
        if self._client is None:
            from huggingface_hub import HfApi

            self._client = HfApi(endpoint=self._endpoint)
        return self._client

    def cached(self, token: str) -> Identity | None:
        """The identity of a token validated within the TTL, else None (no call to the Hub)."""
        hit = self._cache.get(token_hash(token))
        if hit is None or hit[2] is None or hit[0] <= time.monotonic():
            return None
        return _with_token(hit[2], token)

    async def validate(self, token: str) -> Identity:
        key = token_hash(token)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return identity_from_whoami(hit[1], token) if hit[2] is None else _with_token(hit[2], token)
        from huggingface_hub.errors import HfHubHTTPError

        try:
            info = await asyncio.to_thread(self._api().whoami, token)
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 502
            if status in (401, 403):
                raise AuthError("Invalid Hugging Face token.", 401, "invalid_api_key") from None
            raise AuthError(f"Token validation failed upstream (HTTP {status}).", 502, "auth_unavailable") from None
        except Exception:  # network failure talking to the Hub
            raise AuthError("Token validation is unavailable; retry.", 503, "auth_unavailable") from None
        try:
            identity = identity_from_whoami(info, token)
        except AuthError:  # refused (an organization's token): refused again from the cache
            self._remember(key, info, None)
            raise
        self._remember(key, info, identity.model_copy(update={"token": None}))
        return identity

    def _remember(self, key: str, info: dict[str, Any], identity: Identity | None) -> None:
        self._cache[key] = (time.monotonic() + self._ttl, info, identity)
        if len(self._cache) > 10_000:
            now = time.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
