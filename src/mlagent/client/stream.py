"""Follow a response's event log across dropped connections: no gap, no duplicate.

Each event carries its `sequence_number` (also the SSE `id:`). The stream remembers the
last one it handed out and reconnects with `Last-Event-ID`; anything at or below it is
dropped, and a jump past the next number reopens the stream from the last one seen."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from httpx_sse import SSEError

from .api import Api, ApiError

TERMINAL = frozenset({"response.completed", "response.failed", "response.cancelled"})
PAUSE = "response.incomplete"


class StreamLost(Exception):
    """No connection could be made for `give_up_seconds`."""


class EventStream:
    """`events()` yields each event (a dict) once, in order, until the server ends the
    stream at a terminal event or a pause; call it again to go on after a pause."""

    def __init__(self, api: Api, response_id: str, after: int = -1, *,
                 on_retry: Callable[[str, float], None] | None = None, give_up_seconds: float = 300.0,
                 first_delay: float = 0.2, max_delay: float = 5.0) -> None:
        self.api, self.response_id = api, response_id
        self.last_seq = after
        self.last_type: str | None = None
        self.reconnects = 0
        self._on_retry = on_retry or (lambda reason, delay: None)
        self._give_up, self._first_delay, self._max_delay = give_up_seconds, first_delay, max_delay

    def events(self) -> Iterator[dict[str, Any]]:
        delay, failing_since = self._first_delay, None
        while True:
            reason, opened, progressed = None, None, False
            try:
                with self.api.events(self.response_id, self.last_seq) as source:
                    opened = time.monotonic()
                    for sse in source.iter_sse():
                        event = json.loads(sse.data)
                        seq = event.get("sequence_number")
                        if not isinstance(seq, int) or seq <= self.last_seq:
                            continue  # already seen (a replay overlapping a resume)
                        if seq > self.last_seq + 1:
                            reason = f"event {self.last_seq + 1} missing, got {seq}"
                            break
                        self.last_seq, self.last_type = seq, event.get("type")
                        progressed = True
                        yield event
                    else:
                        if self.last_type in TERMINAL or self.last_type == PAUSE:
                            return
                        reason = "the server closed the stream early"
            except ApiError as exc:
                if not exc.retryable:
                    raise
                reason = str(exc)
            except (httpx.TransportError, SSEError, ValueError) as exc:
                reason = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            now = time.monotonic()
            if progressed or (opened is not None and now - opened > self._max_delay):
                failing_since, delay = None, self._first_delay  # it worked for a while: a fresh window
            failing_since = failing_since or now
            if now - failing_since >= self._give_up:
                raise StreamLost(f"lost the event stream of {self.response_id} ({reason}); "
                                 f"gave up after {self._give_up:.0f}s")
            self.reconnects += 1
            self._on_retry(reason or "", delay)
            time.sleep(delay)
            delay = min(delay * 2, self._max_delay)
