"""The wire bytes of finished responses, kept in memory for `GET /v1/responses/{id}`.

A response whose status is final (completed, failed, cancelled) never changes again: no
writer appends to it, and it leaves only by `DELETE`. So it can be served from here,
without a database read or a pydantic round trip, for as long as this process hears of
every delete. On SQLite every delete passes through this process. On PostgreSQL another
replica may delete it: the delete sends a NOTIFY in its transaction (store/notify.py),
which this process's listener turns into `forget`; while the listener is not connected
nothing is kept (`disable`), since a delete then may go unheard.

Bounded by bytes (least recently read first out). A read that raced a delete does not put
its answer back: `put` refuses what was read before the last delete (`epoch`), and before
the last change of `enabled`, so a read that started while deaf is not kept either.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_BYTES = 32 << 20  # all entries together
MAX_ENTRY_BYTES = 1 << 20  # a bigger response is read from the database each time


class FinishedResponses:
    def __init__(self, max_bytes: int = MAX_BYTES, max_entry_bytes: int = MAX_ENTRY_BYTES,
                 enabled: bool = True) -> None:
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._size = 0
        self._max_bytes = max_bytes
        self._max_entry_bytes = max_entry_bytes
        self.enabled = enabled  # False while a delete might go unheard: nothing is kept
        self.epoch = 0  # deletes (and switches) so far: a reader takes it before reading the database

    def get(self, response_id: str) -> tuple[str, bytes] | None:
        """(account, JSON bytes) of a finished response, when kept."""
        hit = self._entries.get(response_id)
        if hit is not None:
            self._entries.move_to_end(response_id)
        return hit

    def put(self, response_id: str, account: str, body: bytes, read_at_epoch: int) -> None:
        if (read_at_epoch != self.epoch or not self.enabled or len(body) > self._max_entry_bytes
                or response_id in self._entries):
            return
        self._entries[response_id] = (account, body)
        self._size += len(body)
        while self._size > self._max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._size -= len(dropped)

    def forget(self, response_id: str) -> None:
        """Called once the response is deleted from the database (here or, heard by
        NOTIFY, on another replica)."""
        self.epoch += 1
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            self._size -= len(entry[1])

    def enable(self) -> None:
        """Every delete from now on will be heard (the listener is connected)."""
        self.epoch += 1  # a read that started while deaf may hold a response deleted meanwhile
        self.enabled = True

    def disable(self) -> None:
        """A delete may go unheard (the listener connection is lost): drop all, keep nothing."""
        self.epoch += 1
        self.enabled = False
        self._entries.clear()
        self._size = 0
