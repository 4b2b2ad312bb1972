"""Each sandbox has its own process limit: one sandbox at its limit (a fork bomb, or a busy
training) does not stop another from starting processes, though both run as `nobody`
(RLIMIT_NPROC alone would make them share one budget: docs/security.md). And the per-sandbox
process group is removed when the sandbox's command ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from .agent_support import agent_env, script, wait_for
from .harness import ServerProcess, needs_bwrap, wait_status

PIDS_ROOT = Path("/sys/fs/cgroup/pids/mlagent-untrusted")

# Fills its own budget with sleeping children, says so (`full`), and holds them until `done`.
FILL = """python -c '
import pathlib, subprocess, time
kids = []
try:
    while len(kids) < 500:
        kids.append(subprocess.Popen(["sleep", "120"]))
except OSError as exc:
    print("full at", len(kids), type(exc).__name__)
pathlib.Path("full").write_text(str(len(kids)))
deadline = time.time() + 100
while not pathlib.Path("done").exists() and time.time() < deadline:
    time.sleep(0.1)
'"""
# Waits for `go` (written once the other sandbox is full), then starts 8 processes.
SPAWN = """python -c '
import pathlib, subprocess, time
pathlib.Path("waiting").write_text("")
deadline = time.time() + 100
while not pathlib.Path("go").exists() and time.time() < deadline:
    time.sleep(0.1)
kids = [subprocess.Popen(["sleep", "120"]) for _ in range(8)]
print("spawned", len(kids))
for kid in kids:
    kid.kill()
'"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_hub, fake_llm):
    env = agent_env(fake_hub, fake_llm, MLAGENT_SANDBOX_WALL_SECONDS="120", MLAGENT_SANDBOX_CPU_SECONDS="60",
                    MLAGENT_SANDBOX_MAX_PROCESSES="16", MLAGENT_SANDBOX_ISOLATION="bwrap")
    server = ServerProcess(tmp_path_factory.mktemp("budget"), env).start()
    yield server
    server.stop()


def _start(server: ServerProcess, c, text: str) -> tuple[str, Path]:
    rid = c.post("/v1/responses", json={"input": text, "background": True}).json()["id"]
    session = wait_for(lambda: c.get(f"/v1/responses/{rid}").json().get("session_id"))
    return rid, server.data_dir / "sandboxes" / session


@needs_bwrap
def test_a_sandbox_at_its_process_limit_does_not_starve_another(server, fake_hub, fake_llm):
    first, second = fake_hub.user_token("budget-a"), fake_hub.user_token("budget-b")
    with server.client(first) as a, server.client(second) as b:
        # A starts first, so under a shared RLIMIT_NPROC its budget would be the one B eats.
        script(fake_llm, [("run_command", {"command": SPAWN})])
        a_id, a_dir = _start(server, a, "spawn later")
        wait_for(lambda: (a_dir / "waiting").exists(), timeout=60)
        script(fake_llm, [("run_command", {"command": FILL})], "Done.", "Done.")
        b_id, b_dir = _start(server, b, "fill the budget")
        wait_for(lambda: (b_dir / "full").exists(), timeout=60)
        held = int((b_dir / "full").read_text())
        assert 8 <= held <= 16  # B was stopped by its limit of 16, not by the 500 it wanted
        assert len(_groups(server)) in (0, 2)  # one process group per running sandbox, where cgroups work
        (a_dir / "go").write_text("")
        done_a = wait_status(a, a_id, {"completed", "failed"}, timeout=60)
        (b_dir / "done").write_text("")
        done_b = wait_status(b, b_id, {"completed", "failed"}, timeout=60)
    out_a = next(i["output"] for i in done_a["output"] if i["type"] == "mcp_call")
    out_b = next(i["output"] for i in done_b["output"] if i["type"] == "mcp_call")
    assert "spawned 8" in out_a, out_a
    assert f"full at {held} BlockingIOError" in out_b, out_b
    wait_for(lambda: not _groups(server), timeout=10)  # removed once their commands ended


def _groups(server: ServerProcess) -> list[Path]:
    """The per-sandbox pids cgroups of `server` (none where it cannot make cgroups)."""
    if not PIDS_ROOT.is_dir():
        return []
    return [g for g in PIDS_ROOT.iterdir() if g.name.startswith(f"{server.proc.pid}-")]
