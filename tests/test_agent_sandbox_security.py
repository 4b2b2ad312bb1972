"""The sandbox holds: sandboxed code cannot read the database, another session's files or
the server's environment, has no network unless the call asks for Hub access, and a fork
bomb, a memory hog and an endless loop are stopped while the server keeps serving.
Cancelling a turn kills its sandbox processes. Without bwrap, the fallback is explicit."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from .agent_support import agent_env, deferred, release, run_turn, script, wait_for  # noqa: F401
from .harness import ServerProcess, needs_bwrap, wait_status

CANARY = f"canary-{uuid.uuid4().hex}"




@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory, fake_hub, fake_llm):
    env = agent_env(fake_hub, fake_llm, MLAGENT_SANDBOX_WALL_SECONDS="8", MLAGENT_SANDBOX_CPU_SECONDS="3",
                    MLAGENT_SANDBOX_ISOLATION="bwrap", SECRET_CANARY=CANARY)
    server = ServerProcess(tmp_path_factory.mktemp("sandboxed"), env).start()
    yield server
    server.stop()


# Every process forks forever: only the process limit holds it, only the wall clock ends it.
FORK_BOMB = """python -c '
import os  # {marker}
while True:
    try:
        os.fork()
    except OSError:
        pass
'"""


def _pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()


@needs_bwrap
def test_cannot_read_database_other_sessions_or_server_env(sandbox_server, fake_hub, fake_llm):
    db = sandbox_server.data_dir / "mlagent.db"
    alice, bob = fake_hub.user_token("sb-alice"), fake_hub.user_token("sb-bob")
    script(fake_llm, [("write_file", {"path": "secret.txt", "content": "TOP-SECRET-ALICE"})], "Saved.")
    first = run_turn(sandbox_server, alice, "keep a secret")
    alice_dir = sandbox_server.data_dir / "sandboxes" / first.response["session_id"]
    # The targets are real: the host sees the database and Alice's file where the probes look.
    assert db.read_bytes().startswith(b"SQLite format 3")
    assert (alice_dir / "secret.txt").read_text() == "TOP-SECRET-ALICE"
    probes = (f"cat {db} | head -c 16; ls {sandbox_server.data_dir}; cat {alice_dir}/secret.txt; "
              f"cat ../{alice_dir.name}/secret.txt; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | "
              f"grep -c {CANARY[:10]}''{CANARY[10:]}; env; echo mine > own.txt; cat own.txt")
    script(fake_llm,
           [("run_command", {"command": probes})],
           [("read_file", {"path": f"../{alice_dir.name}/secret.txt"}), ("read_file", {"path": str(db)})],
           [("run_python", {"code": f"import urllib.request\nurllib.request.urlopen('{sandbox_server.url}/api/config/model', timeout=3)"})],
           [("run_python", {"hub_access": True, "code": (
               "import os, urllib.error, urllib.request\n"
               "try:\n"
               "    urllib.request.urlopen(os.environ['HF_ENDPOINT'] + '/api/whoami-v2', timeout=5)\n"
               "except urllib.error.HTTPError as exc:\n"
               "    print('hub answered', exc.code)\n"
               "print('token', os.environ.get('HF_TOKEN'))")})],
           "Nothing leaked.")
    turn = run_turn(sandbox_server, bob, "probe the sandbox")
    assert turn.response["status"] == "completed", turn.response
    outs = [out for _, _, out in turn.calls()]
    probe = outs[0]
    assert "mine" in probe  # the command did run, in its own directory
    assert "SQLite format 3" not in probe and f"cannot access '{sandbox_server.data_dir}'" in probe
    assert "TOP-SECRET-ALICE" not in probe and "No such file or directory" in probe
    assert CANARY not in probe and "MLAGENT_" not in probe and "HF_TOKEN" not in probe
    assert "\n0\n" in probe  # grep -c found the canary in no visible process environment
    assert "leaves the sandbox directory" in outs[1] and "must be relative" in outs[2]
    assert "exit code: 1" in outs[3] and ("URLError" in outs[3] or "Network is unreachable" in outs[3])
    # Hub access is network access without the caller's token (docs/security.md).
    assert "hub answered 401" in outs[4] and "token None" in outs[4], outs[4]
    assert not any(CANARY in e.data or "TOP-SECRET-ALICE" in e.data or bob in e.data for e in turn.events)


@needs_bwrap
def test_fork_bomb_memory_hog_and_endless_loop_stop_while_server_serves(sandbox_server, fake_hub, fake_llm):
    token = fake_hub.user_token("sb-hostile")
    marker = f"bomb{uuid.uuid4().hex[:12]}"
    script(fake_llm,
           [("run_command", {"command": FORK_BOMB.format(marker=marker), "timeout_seconds": 5})],
           [("run_python", {"code": "x = bytearray(8 * 1024**3)\nprint('allocated')"})],
           [("run_python", {"code": "while True:\n    pass"})],
           "All stopped.")
    served = 0
    with sandbox_server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "misbehave", "background": True}).json()["id"]
        while True:
            body = c.get(f"/v1/responses/{rid}").json()
            if body["status"] in ("completed", "failed", "cancelled"):
                break
            assert c.get("/api/config/model").status_code == 200
            served += 1
    assert served > 0
    assert body["status"] == "completed", body
    outs = [i["output"] for i in body["output"] if i["type"] == "mcp_call"]
    assert "wall-clock limit" in outs[0]
    assert "MemoryError" in outs[1] and "allocated" not in outs[1]
    # CPU-time limit, or the wall clock when the machine is busy: either way it was stopped.
    assert "Killed by SIG" in outs[2] or "wall-clock limit" in outs[2]
    # Nothing the fork bomb started survives.
    wait_for(lambda: not _pgrep(marker), timeout=10)


@needs_bwrap
def test_cancelling_a_turn_kills_its_sandbox_processes(sandbox_server, fake_hub, fake_llm):
    token = fake_hub.user_token("sb-cancel")
    marker = f"marker{uuid.uuid4().hex[:12]}"
    script(fake_llm, [("run_command", {"command": f"sleep 300 && echo {marker}"})])
    with sandbox_server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "run forever", "background": True}).json()["id"]
        wait_for(lambda: _pgrep(marker))
        c.post(f"/v1/responses/{rid}/cancel")
        done = wait_status(c, rid, {"cancelled", "completed", "failed"})
        wait_for(lambda: not _pgrep(marker), timeout=5)
    assert done["status"] == "cancelled"
    # The command never finished: no output of it was recorded.
    runs = [i for i in done["output"] if i["type"] == "mcp_call"]
    assert runs and all(i["status"] == "incomplete" and not i["output"] for i in runs)


def test_fallback_without_bwrap_is_explicit_and_still_limited(tmp_path, fake_hub, fake_llm):
    server = ServerProcess(tmp_path, agent_env(fake_hub, fake_llm, MLAGENT_SANDBOX_ISOLATION="none",
                                               SECRET_CANARY=CANARY)).start()
    try:
        token = fake_hub.user_token("sb-fallback")
        script(fake_llm, [("run_command", {"command": "env; pwd"})],
               [("run_python", {"code": "x = bytearray(8 * 1024**3)"})], "Done.")
        turn = run_turn(server, token, "run in the fallback")
    finally:
        server.stop()
    assert "the agent's sandbox commands runs WITHOUT bwrap isolation" in server.log()
    env_out, hog = (out for _, _, out in turn.calls())
    assert "without bwrap isolation" in env_out
    assert CANARY not in env_out and "MLAGENT_" not in env_out
    assert turn.response["session_id"] in env_out  # cwd is the session's own directory
    assert "MemoryError" in hog
