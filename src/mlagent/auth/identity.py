"""The caller, as every service sees it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, SecretStr

# What each fine-grained permission is called on the Hub's token page, for error messages.
PERMISSION_LABELS = {
    "inference.serverless.write": "Make calls to Inference Providers",
    "job.write": "Start and manage Jobs on your behalf",
    "repo.write": "Write access to contents/settings of all repos under your personal namespace",
}
WRITE_PERMISSIONS = frozenset({"repo.write", "job.write"})


class Identity(BaseModel):
    """An authenticated caller. `token` is the caller's HF token, in memory only."""

    account: str
    kind: Literal["hf", "api_key"]
    is_operator: bool = False
    token: SecretStr | None = None
    can_use_inference: bool = True
    # The token's kind ("read", "write" or "fineGrained"; None for API keys or unknown) and,
    # for a fine-grained token, what it may do in the user's own namespace (auth/hf_tokens.py).
    token_role: str | None = None
    token_permissions: frozenset[str] = frozenset()

    def missing(self, *permissions: str) -> list[str]:
        """Which of `permissions` this caller's token lacks on its own namespace. A classic
        write token has them all, a read token no write one; an unknown kind is left to the Hub."""
        if self.token_role == "fineGrained":
            return [p for p in permissions if p not in self.token_permissions]
        if self.token_role == "read":
            return [p for p in permissions if p in WRITE_PERMISSIONS]
        return []


def describe(permission: str) -> str:
    """`'job.write' ("Start and manage Jobs on your behalf")`, for messages."""
    label = PERMISSION_LABELS.get(permission)
    return f"'{permission}' (\"{label}\")" if label else f"'{permission}'"


class AuthError(Exception):
    """Authentication failed; `status` and `code` say how to answer."""

    def __init__(self, message: str, status: int = 401, code: str = "invalid_api_key") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
