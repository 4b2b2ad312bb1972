"""In-process pub/sub for live tails: subscribers learn "something new on response X".

Subscribers always re-read the log after a wake-up, so a missed or repeated wake-up can
never lose or duplicate an event. Subscribe *before* the first read: a publish that
lands between the read and the wait is then kept in the subscription's flag. Events
written by another process are seen through the subscriber's periodic re-read (the
`timeout` of `Subscription.wait`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Subscription:
    def __init__(self, bus: EventBus, response_id: str) -> None:
        self._bus = bus
        self.response_id = response_id
        self._flag = asyncio.Event()

    def _notify(self) -> None:
        self._flag.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for news or `timeout`; True when woken by a publish."""
        try:
            await asyncio.wait_for(self._flag.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._flag.clear()

    def close(self) -> None:
        self._bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, response_id: str) -> Subscription:
        sub = Subscription(self, response_id)
        self._subs[response_id].add(sub)
        return sub

    def publish(self, response_id: str) -> None:
        for sub in self._subs.get(response_id, ()):
            sub._notify()

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.response_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.response_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())
