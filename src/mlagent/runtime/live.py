"""Live sessions: what a session holds in memory (the caller's token) and the limits on
how many exist. Idle ones are evicted and restore from the database on the next request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import SecretStr


class LimitReached(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class LiveSession:
    session_id: str
    account: str
    token: SecretStr | None
    last_active: float = field(default_factory=time.monotonic)
    running: set[str] = field(default_factory=set)
    # Creates in flight that attached this session, and whether one of them took its slot
    # and none has committed a turn yet (`LiveSessions.hold`).
    holders: int = 0
    provisional: bool = False


class LiveSessions:
    def __init__(self, per_account: int, global_cap: int) -> None:
        self._per_account = per_account
        self._global_cap = global_cap
        self._sessions: dict[str, LiveSession] = {}

    def get(self, session_id: str) -> LiveSession | None:
        return self._sessions.get(session_id)

    def count(self, account: str | None = None) -> int:
        if account is None:
            return len(self._sessions)
        return sum(1 for s in self._sessions.values() if s.account == account)

    def check_room(self, account: str) -> None:
        """Raise `LimitReached` if `account` may not open (or restore) another session."""
        if self.count(account) >= self._per_account:
            raise LimitReached(
                f"Account {account!r} already has {self._per_account} live sessions; wait for one to go idle "
                "or continue an existing one with previous_response_id."
            )
        if len(self._sessions) >= self._global_cap:
            raise LimitReached("The server is at its global capacity of live sessions; retry later.")

    def attach(self, session_id: str, account: str, token: SecretStr | None) -> LiveSession:
        """Make the session live (checking limits when it is not) with the caller's token."""
        live = self._sessions.get(session_id)
        if live is None:
            self.check_room(account)
            live = self._sessions[session_id] = LiveSession(session_id, account, token)
        elif token is not None:
            live.token = token
        live.last_active = time.monotonic()
        return live

    @contextmanager
    def hold(self, session_id: str, account: str, token: SecretStr | None) -> Iterator[LiveSession]:
        """`attach` for a create: if the block raises, a slot this create took is given
        back (unless another create in flight shares it, or a turn runs in it), so a failed
        create never leaves the account a session short. Raises `LimitReached`."""
        fresh = session_id not in self._sessions
        live = self.attach(session_id, account, token)
        live.holders += 1
        live.provisional = live.provisional or fresh
        try:
            yield live
        except BaseException:
            live.holders -= 1
            if (live.provisional and not live.holders and not live.running
                    and self._sessions.get(session_id) is live):
                del self._sessions[session_id]
            raise
        live.holders -= 1
        live.provisional = False

    def evict_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def evict_idle(self, idle_seconds: float) -> list[str]:
        now = time.monotonic()
        gone = [
            sid for sid, s in self._sessions.items()
            if not s.running and not s.holders and now - s.last_active >= idle_seconds
        ]
        for sid in gone:
            del self._sessions[sid]
        return gone
