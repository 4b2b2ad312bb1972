"""Sandbox retention: an evicted session's sandbox directory is removed once the session
has been idle past MLAGENT_SANDBOX_RETENTION_HOURS (never while a turn runs); a later
turn of that session gets a fresh, empty directory and the agent is told so."""

from __future__ import annotations

import threading
import time

import pytest

from .conftest import database_params
from .fakes.llm import Reply
from .harness import wait_status

DONE = {"completed", "failed", "cancelled", "incomplete"}
RETENTION_HOURS = 0.0005  # 1.8 seconds


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("database", database_params())
def test_an_idle_sessions_sandbox_is_removed_and_the_next_turn_is_told(make_server, fake_hub, fake_llm, database):
    server = make_server(database, mlagent_sandbox_retention_hours=str(RETENTION_HOURS), mlagent_idle_eviction_seconds="1",
                         mlagent_sandbox_isolation="none").start()
    token = fake_hub.user_token("rita")
    held = threading.Event()
    fake_llm.push(Reply(tool_calls=[("write_file", {"path": "notes.txt", "content": "epoch 1: 0.91"})]),
                  Reply(text="Saved.", gate=held))
    with server.client(token) as c:
        first = c.post("/v1/responses", json={"input": "save notes", "background": True}).json()
        workspace = server.data_dir / "sandboxes" / first["session_id"]
        assert _wait_for(lambda: (workspace / "notes.txt").exists())
        # The turn is still running (its model call is held): several retention periods pass
        # and sweeps run, but its directory stays.
        time.sleep(RETENTION_HOURS * 3600 * 3)
        assert (workspace / "notes.txt").read_text() == "epoch 1: 0.91"
        held.set()
        assert wait_status(c, first["id"], DONE)["status"] == "completed"

        # Finished, evicted, idle past retention: removed.
        assert _wait_for(lambda: not workspace.exists()), "the idle session's sandbox was not removed"

        fake_llm.push(Reply(tool_calls=[("read_file", {"path": "notes.txt"})]),
                      Reply(tool_calls=[("write_file", {"path": "notes.txt", "content": "again"})]),
                      Reply(text="Recreated."))
        second = c.post("/v1/responses", json={"input": "read the notes", "previous_response_id": first["id"]}).json()
        assert second["status"] == "completed", second
        outputs = [i["output"] for i in second["output"] if i["type"] == "mcp_call"]
        assert outputs[0].startswith("Error: ") and "not a file in the sandbox" in outputs[0]
        assert "sandbox directory was deleted" in outputs[0] and "fresh, empty directory" in outputs[0]
        assert "deleted" not in outputs[1]  # told once
        assert (workspace / "notes.txt").read_text() == "again"

        # model_upload reads the sandbox too: it is told the same way, once.
        assert _wait_for(lambda: not workspace.exists()), "the idle session's sandbox was not removed again"
        fake_llm.push(Reply(tool_calls=[("model_upload", {"model_id": "m1", "path": "notes.txt", "kind": "data"})]),
                      Reply(tool_calls=[("model_upload", {"model_id": "m1", "path": "notes.txt", "kind": "data"})]),
                      Reply(text="Gone again."))
        third = c.post("/v1/responses", json={"input": "upload the notes", "previous_response_id": second["id"]}).json()
        assert third["status"] == "completed", third
        outputs = [i["output"] for i in third["output"] if i["type"] == "mcp_call"]
        assert outputs[0].startswith("Error: 'notes.txt' does not exist in the sandbox"), outputs[0]
        assert "sandbox directory was deleted" in outputs[0]
        assert outputs[1] == "Error: 'notes.txt' does not exist in the sandbox"  # told once
    assert not list((server.data_dir / "sandboxes" / ".trash").iterdir())  # the files are really gone


def test_a_slow_purge_does_not_hold_up_the_keepers_tick():
    """Deleting a big trash can take minutes; the keeper's tick (which also renews this
    process's turn leases) must not wait for it, or other replicas take the turns over."""
    import asyncio

    from mlagent.runtime.live import LiveSessions
    from mlagent.runtime.workspaces import WorkspaceSweeper

    release_purge = threading.Event()

    class SlowWorkspaces:
        purges = 0

        def idle_sessions(self, idle_seconds):
            return ["s1"]

        def remove(self, session_id):
            return True

        def purge(self):
            SlowWorkspaces.purges += 1
            release_purge.wait(30)

    class NoneBusy:
        async def busy(self, ids, since):
            return set()

    async def main():
        sweeper = WorkspaceSweeper(SlowWorkspaces(), NoneBusy(), LiveSessions(10, 10), 3600)
        try:
            assert await asyncio.wait_for(sweeper.sweep(), 10) == ["s1"]
            assert await asyncio.wait_for(sweeper.sweep(), 10) == ["s1"]  # one purge at a time
        finally:
            release_purge.set()
        assert SlowWorkspaces.purges == 1

    asyncio.run(main())
