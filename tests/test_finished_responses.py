"""The in-memory copy of finished responses (runtime/finished.py): bounded, and never holds
a response that a delete removed, even when the read raced the delete."""

from __future__ import annotations

from mlagent.runtime.finished import FinishedResponses


def test_a_read_that_raced_a_delete_is_not_kept():
    kept = FinishedResponses()
    epoch = kept.epoch  # a GET takes the epoch, then reads the database...
    kept.forget("resp_1")  # ...while a DELETE removes the response
    kept.put("resp_1", "alice", b"{}", epoch)  # the GET's answer comes back after the delete
    assert kept.get("resp_1") is None
    kept.put("resp_1", "alice", b"{}", kept.epoch)
    assert kept.get("resp_1") == ("alice", b"{}")
    kept.forget("resp_1")
    assert kept.get("resp_1") is None


def test_bounded_by_bytes_least_recently_read_first_out():
    kept = FinishedResponses(max_bytes=10, max_entry_bytes=6)
    kept.put("a", "x", b"1234", 0)
    kept.put("b", "x", b"1234", 0)
    kept.get("a")  # read: "b" is now the oldest
    kept.put("c", "x", b"1234", 0)
    assert kept.get("a") and kept.get("c") and kept.get("b") is None
    kept.put("big", "x", b"1234567", 0)  # over the entry cap: never kept
    assert kept.get("big") is None


def test_nothing_is_kept_while_deaf_nor_from_a_read_that_started_then():
    kept = FinishedResponses(enabled=False)  # PostgreSQL, before the listener connects
    kept.put("resp_1", "alice", b"{}", kept.epoch)
    assert kept.get("resp_1") is None
    epoch = kept.epoch  # a GET reads while deaf (a delete made now goes unheard)...
    kept.enable()  # ...the listener connects...
    kept.put("resp_1", "alice", b"{}", epoch)  # ...and the GET's answer comes back: not kept
    assert kept.get("resp_1") is None
    kept.put("resp_1", "alice", b"{}", kept.epoch)
    assert kept.get("resp_1") == ("alice", b"{}")
    epoch = kept.epoch
    kept.disable()  # the listener connection is lost: everything goes
    assert kept.get("resp_1") is None
    kept.enable()
    kept.put("resp_2", "alice", b"{}", epoch)  # read before the loss: not kept
    assert kept.get("resp_2") is None
