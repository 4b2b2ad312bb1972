"""In-process pub/sub for live tails: subscribers learn "something new on response X".

Subscribers always re-read the log after a wake-up, so a missed or repeated wake-up can
never lose or duplicate an event. Subscribe *before* the first read: a publish that
lands between the read and the wait is then kept in the subscription's flag. Events
written by another process arrive as a `wake` (PostgreSQL NOTIFY, store/notify.py), which
sends the subscribers to the database, and otherwise through their periodic re-read
(the `timeout` of `Subscription.wait`).

While a response has subscribers the bus also keeps its most recent events, so a
thousand streams on one turn cost one database write and no reads per batch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Sequence

from .types import StoredEvent

RECENT_EVENTS = 4096


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
        self._recent: dict[str, deque[StoredEvent]] = {}

    def subscribe(self, response_id: str) -> Subscription:
        sub = Subscription(self, response_id)
        self._subs[response_id].add(sub)
        return sub

    def publish(self, response_id: str, events: Sequence[StoredEvent] = ()) -> None:
        """Announce committed `events` (contiguous, ascending) of `response_id`."""
        subs = self._subs.get(response_id)
        if not subs:
            return
        if events:
            buf = self._recent.setdefault(response_id, deque(maxlen=RECENT_EVENTS))
            if buf and buf[-1].seq + 1 != events[0].seq:
                buf.clear()
            buf.extend(events)
        for sub in subs:
            sub._notify()

    def wake(self, response_id: str, seq: int | None = None) -> None:
        """Another process committed events of `response_id` up to `seq` (None: maybe any).

        The memory buffer cannot hold them, so it is dropped when it ends before `seq`:
        the woken subscribers then read the database.
        """
        subs = self._subs.get(response_id)
        if not subs:
            return
        buf = self._recent.get(response_id)
        if buf and (seq is None or buf[-1].seq < seq):
            buf.clear()
        for sub in subs:
            sub._notify()

    def wake_all(self) -> None:
        """Wake every subscriber to re-read the database (news may have been missed)."""
        for response_id in list(self._subs):
            self.wake(response_id)

    def recent(self, response_id: str, after: int) -> list[StoredEvent] | None:
        """The events after `after` from memory, or None when memory does not reach back."""
        buf = self._recent.get(response_id)
        if not buf or buf[0].seq > after + 1:
            return None
        return [e for e in buf if e.seq > after]

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.response_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.response_id]
                self._recent.pop(sub.response_id, None)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())
