"""In-process pub/sub for live tails: subscribers learn "something new on response X".

Every event this process commits is published here (after its commit), with the events,
and kept in a small buffer while the response has subscribers, so a thousand streams on
one turn cost one database write and no reads per batch. Subscribe *before* the first
read: a publish that lands between the read and the wait is then kept in the
subscription's flag. A subscriber that the buffer cannot serve (it fell behind, or
another process wrote) reads the log, so a missed or repeated wake-up can never lose or
duplicate an event.

Events written by another process arrive as a `wake` (PostgreSQL NOTIFY,
store/notify.py). Where another writer may exist (PostgreSQL) the bus also re-checks the
end of every subscribed log on ONE slow timer (`poll_seconds`): one statement reads the
last seq of all subscribed responses (at 2,000 tailed responses and 5 s that is one
query every 5 s, where a timer per response made 400 a second), and a response's
subscribers are woken only when its log has moved past what the bus has seen. On SQLite
(one process) there is no other writer: no timer at all, so idle tails cost nothing but
their keep-alive comments, which one shared clock paces (events/keepalive.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence

from .types import StoredEvent

RECENT_EVENTS = 4096
log = logging.getLogger(__name__)


class Subscription:
    def __init__(self, bus: EventBus, response_id: str) -> None:
        self._bus = bus
        self.response_id = response_id
        self._flag = asyncio.Event()
        self._news = False
        self._quiet_ticks = 0  # keep-alive clock ticks since the tail last sent anything

    def _notify(self) -> None:
        self._news = True
        self._flag.set()

    def tick(self) -> None:
        """The keep-alive clock's half period (events/keepalive.py): after two ticks with
        nothing sent, wake the tail to send a keep-alive."""
        self._quiet_ticks += 1
        if self._quiet_ticks >= 2:
            self._flag.set()

    def sent(self) -> None:
        """The tail just sent events: its quiet time starts again."""
        self._quiet_ticks = 0
        if not self._news:
            self._flag.clear()

    async def wait(self, timeout: float) -> bool:
        """Wait for news or `timeout`; True when woken by a publish."""
        if not self._flag.is_set():
            try:
                async with asyncio.timeout(timeout):  # no task of its own, unlike `wait_for` on 3.11
                    await self._flag.wait()
            except TimeoutError:
                return False
        self._flag.clear()
        self._news = False
        return True

    async def next(self) -> bool:
        """Wait for news (True) or a keep-alive due (False): for a tail on a `KeepAliveClock`,
        which holds the only timer."""
        await self._flag.wait()
        if self._news:
            self._news = False
            if self._quiet_ticks < 2:  # else a keep-alive stays due unless `sent` follows
                self._flag.clear()
            return True
        self._flag.clear()
        self._quiet_ticks = 0
        return False

    def close(self) -> None:
        self._bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LogEnds = Callable[[Sequence[str]], Awaitable[dict[str, int]]]


class EventBus:
    def __init__(self, log_ends: LogEnds | None = None, poll_seconds: float | None = None) -> None:
        """`log_ends(response_ids)` (each existing log's last seq) and `poll_seconds` turn on
        the shared safety re-read: only where another process may write the log."""
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._recent: dict[str, deque[StoredEvent]] = {}
        self._seen: dict[str, int] = {}  # the last seq known here, per subscribed response
        self._log_ends = log_ends
        self._poll = poll_seconds if log_ends is not None else None
        self._poller: asyncio.Task[None] | None = None  # runs while anything is subscribed

    def subscribe(self, response_id: str) -> Subscription:
        sub = Subscription(self, response_id)
        self._subs[response_id].add(sub)
        if self._poll and self._poller is None:
            self._poller = asyncio.create_task(self._recheck(), name="tail-poll")
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
            self._seen[response_id] = max(self._seen.get(response_id, -1), events[-1].seq)
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
        if seq is not None:
            self._seen[response_id] = max(self._seen.get(response_id, -1), seq)
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
        size = len(buf)
        newer = min(buf[-1].seq - after, size)  # contiguous seqs: the newest `newer` items
        return [buf[i] for i in range(size - newer, size)] if newer > 0 else []

    async def _recheck(self) -> None:
        """The shared safety re-read: every `poll_seconds`, the log ends of all subscribed
        responses in one statement. Stops when nothing is subscribed (`subscribe` starts it
        again); the check and the stop are one step, so no subscription is left unwatched."""
        assert self._log_ends is not None and self._poll
        while True:
            await asyncio.sleep(self._poll)
            ids = list(self._subs)
            if not ids:
                self._poller = None
                return
            try:
                ends = await self._log_ends(ids)
            except Exception as exc:  # noqa: BLE001 - the database is away: try again next round
                log.warning("tail re-read of %d responses failed: %s", len(ids), type(exc).__name__)
                continue
            for response_id in ids:
                end = ends.get(response_id)  # None: the response is gone (its readers learn that)
                if response_id in self._subs and (end is None or end > self._seen.get(response_id, -1)):
                    self.wake(response_id, end)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.response_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.response_id]
                self._recent.pop(sub.response_id, None)
                self._seen.pop(sub.response_id, None)

    async def close(self) -> None:
        """Stop the re-read timer (at shutdown)."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(poller, return_exceptions=True)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())
