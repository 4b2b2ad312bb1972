"""Live sessions: what a session holds in memory (the caller's token) and the limits on
how many exist. Idle ones are evicted and restore from the database on the next request.

A session with no turn running gives its slot up on demand: once it has been idle
`reclaim_seconds` (a finished or paused turn), a create that would pass a limit evicts the
least recently active such session instead of refusing (docs/responses-api.md, "Sessions,
limits, eviction"). Only when every slot is held by a running or just-finished session is
the caller refused, with `retry_after`: when the next slot frees."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import SecretStr


class LimitReached(Exception):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass
class LiveSession:
    session_id: str
    account: str
    token: SecretStr | None
    last_active: float = field(default_factory=time.monotonic)
    running: set[str] = field(default_factory=set)
    ended: bool = False  # its owner ended it: reclaimable as soon as no turn runs
    # Creates in flight that attached this session, and whether one of them took its slot
    # and none has committed a turn yet (`LiveSessions.hold`).
    holders: int = 0
    provisional: bool = False


class LiveSessions:
    def __init__(self, per_account: int, global_cap: int, reclaim_seconds: float = 10.0) -> None:
        self._per_account = per_account
        self._global_cap = global_cap
        self._reclaim = reclaim_seconds
        self._sessions: dict[str, LiveSession] = {}

    def get(self, session_id: str) -> LiveSession | None:
        return self._sessions.get(session_id)

    def count(self, account: str | None = None) -> int:
        if account is None:
            return len(self._sessions)
        return sum(1 for s in self._sessions.values() if s.account == account)

    def check_room(self, account: str) -> None:
        """Make room for `account` to open (or restore) a session by reclaiming an idle one,
        or raise `LimitReached` saying when the next slot frees."""
        mine = [s for s in self._sessions.values() if s.account == account]
        if len(mine) >= self._per_account and not self._reclaim_one(mine):
            running = sum(1 for s in mine if s.running)
            wait = self._next_free(mine)
            when = (f"the next slot frees in about {math.ceil(wait)} s, when a finished session has been idle "
                    f"{self._reclaim:g} s" if running < len(mine) else
                    "all of them are running a turn: the next slot frees when one of those turns ends")
            raise LimitReached(
                f"Account {account!r} already has {self._per_account} live sessions ({running} running a turn); "
                f"{when}. End one you no longer need with DELETE /v1/sessions/{{session_id}}, or continue one with "
                "previous_response_id.", wait)
        if len(self._sessions) >= self._global_cap and not self._reclaim_one(list(self._sessions.values())):
            wait = self._next_free(list(self._sessions.values()))
            raise LimitReached(f"The server is at its global capacity of {self._global_cap} live sessions; the "
                               f"next slot frees in about {math.ceil(wait)} s; retry then.", wait)

    def _reclaim_one(self, candidates: list[LiveSession]) -> bool:
        """Evict the least recently active idle session among `candidates`, if one is reclaimable."""
        now = time.monotonic()
        idle = [s for s in candidates if not s.running and not s.holders and (s.ended or now - s.last_active >= self._reclaim)]
        if not idle:
            return False
        del self._sessions[min(idle, key=lambda s: s.last_active).session_id]
        return True

    def _next_free(self, candidates: list[LiveSession]) -> float:
        """Seconds until one of `candidates` becomes reclaimable; for running turns (whose end
        nobody knows) the reclaim window is the honest lower bound."""
        now = time.monotonic()
        waits = [self._reclaim - (now - s.last_active) for s in candidates if not s.running]
        return max(1.0, min(waits)) if waits else max(1.0, self._reclaim)

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
