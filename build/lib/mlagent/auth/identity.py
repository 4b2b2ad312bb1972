"""The caller, as every service sees it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, SecretStr


class Identity(BaseModel):
    """An authenticated caller. `token` is the caller's HF token, in memory only."""

    account: str
    kind: Literal["hf", "api_key"]
    is_operator: bool = False
    token: SecretStr | None = None
    can_use_inference: bool = True


class AuthError(Exception):
    """Authentication failed; `status` and `code` say how to answer."""

    def __init__(self, message: str, status: int = 401, code: str = "invalid_api_key") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
