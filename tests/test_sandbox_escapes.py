"""The sandbox escape suite: the same attacks against every place that runs user code.

Runners: the agent's `run_python` tool, a `/mltraining` job (uploaded training script) and
a pickle loaded by a deployment's serving worker (its payload runs at load time). Attacks:
read another tenant's files, the database, the server's environment and
/proc/<server pid>/environ|mem, connect to the server's own HTTP port, fork bomb, memory
hog, endless loop, disk filler. Each must be contained, and the server must still answer.

The read attacks report what they saw as `REPORT{json}END` (printed, or for the pickle
raised, which becomes the deployment's reason); the resource attacks replace the runner's
process (exec, so the marker is on their command line) and must end in a limit (a failed
job or deployment, a killed command) and leave no process behind. The server
runs with small limits so the suite is quick (seconds per case)."""

from __future__ import annotations

import json
import pickle
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from .agent_support import agent_env, run_turn, script
from .harness import ServerProcess, needs_bwrap
from .mlconnector.client import api_client, upload, wait_deployment, wait_training

pytestmark = needs_bwrap

CANARY = f"canary-{uuid.uuid4().hex}"
TENANT_SECRET = f"tenant-b-secret-{uuid.uuid4().hex}"
LIMITS = {
    "MLAGENT_SANDBOX_ISOLATION": "bwrap", "SECRET_CANARY": CANARY,
    "MLAGENT_SANDBOX_CPU_SECONDS": "3", "MLAGENT_SANDBOX_MEMORY_MB": "768", "MLAGENT_SANDBOX_MAX_PROCESSES": "32",
    "MLAGENT_SANDBOX_WALL_SECONDS": "12", "MLAGENT_SANDBOX_FILE_SIZE_MB": "16", "MLAGENT_SANDBOX_DISK_MB": "32",
    "MLAGENT_JOB_CPU_SECONDS": "3", "MLAGENT_JOB_MEMORY_MB": "768", "MLAGENT_JOB_MAX_PROCESSES": "32",
    "MLAGENT_JOB_WALL_SECONDS": "12", "MLAGENT_JOB_FILE_SIZE_MB": "16",
    "MLAGENT_SERVING_MEMORY_MB": "1024", "MLAGENT_SERVING_START_TIMEOUT_SECONDS": "15",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_hub, fake_llm):
    server = ServerProcess(tmp_path_factory.mktemp("escapes"), agent_env(fake_hub, fake_llm, **LIMITS))
    server.start(timeout=90)
    # Another tenant's file, world-readable on the host: only the sandbox keeps it out of reach.
    other = server.data_dir / "sandboxes" / "other-tenant-session"
    other.mkdir(parents=True, exist_ok=True)
    (other / "secret.txt").write_text(TENANT_SECRET)
    (other / "secret.txt").chmod(0o644)
    other.chmod(0o755)
    yield server
    server.stop()


# -- the attacks (Python source; `report` is filled in and reported by the runner) ------------------
READ_TENANT = """
target = {tenant!r}
for path in [target] + ["../" * k + "sandboxes/other-tenant-session/secret.txt" for k in range(1, 7)]:
    try:
        report.setdefault("read", []).append(open(path).read())
    except Exception as exc:
        report.setdefault("errors", []).append(type(exc).__name__)
try:
    report["listing"] = os.listdir({data_dir!r})
except Exception as exc:
    report["listing"] = type(exc).__name__
"""
READ_DATABASE = """
for path in [{db!r}] + ["../" * k + "mlagent.db" for k in range(1, 7)]:
    try:
        report.setdefault("read", []).append(open(path, "rb").read(16).decode("latin-1"))
    except Exception as exc:
        report.setdefault("errors", []).append(type(exc).__name__)
"""
SERVER_ENV = """
seen = repr(dict(os.environ))
for pid in [{pid}] + [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        seen += open(f"/proc/{{pid}}/environ", "rb").read().decode("latin-1")
    except Exception as exc:
        report.setdefault("errors", []).append(type(exc).__name__)
try:
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for line in open(f"/proc/{pid}/maps"):
            if "[heap]" in line:
                start = int(line.split("-")[0], 16)
                mem.seek(start)
                seen += mem.read(1 << 20).decode("latin-1")
                report["mem"] = "read"
except Exception as exc:
    report["mem"] = type(exc).__name__
report["canary"] = {canary!r} in seen
report["server_vars"] = "MLAGENT_DATA_DIR" in seen or "MLAGENT_INFERENCE" in seen
"""
CONNECT = """
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    report["connect"] = "ok"
except Exception as exc:
    report["connect"] = type(exc).__name__
"""
FORK_BOMB = """
import sys
bomb = "import os  # {marker}\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass\\n"
os.execv(sys.executable, [sys.executable, "-c", bomb])
"""
MEMORY_HOG = """
chunks = []
for _ in range(200):
    chunks.append(bytearray(100 * 1024 * 1024))
report["allocated_mb"] = 100 * len(chunks)
"""
ENDLESS_LOOP = """
import sys
os.execv(sys.executable, [sys.executable, "-c", "while True:\\n    pass  # {marker}"])
"""
DISK_FILLER = """
import sys
filler = ("import os  # {marker}\\n"
          "block = os.urandom(1 << 20)\\n"
          "for i in range(10000):\\n"
          "    with open(f'fill-{{i}}.bin', 'wb') as f:\\n"
          "        f.write(block)\\n")
os.execv(sys.executable, [sys.executable, "-c", filler])
"""
PROBES = {"read_other_tenant": READ_TENANT, "read_database": READ_DATABASE, "server_environment": SERVER_ENV,
          "connect_server_port": CONNECT}
RESOURCES = {"fork_bomb": FORK_BOMB, "memory_hog": MEMORY_HOG, "endless_loop": ENDLESS_LOOP,
             "disk_filler": DISK_FILLER}


def _source(attack: str, server: ServerProcess, marker: str) -> str:
    template = {**PROBES, **RESOURCES}[attack]
    return template.format(tenant=str(server.data_dir / "sandboxes" / "other-tenant-session" / "secret.txt"),
                           data_dir=str(server.data_dir), db=str(server.data_dir / "mlagent.db"),
                           pid=server.proc.pid, canary=CANARY, port=server.port, marker=marker)


def _program(body: str, raise_report: bool) -> str:
    end = ("raise RuntimeError('REPORT' + json.dumps(report) + 'END')" if raise_report
           else "print('REPORT' + json.dumps(report) + 'END', flush=True)")
    return f"import json, os\nreport = {{}}\n{body}\n{end}\n"


# -- the runners: each returns (what it said, whether the run ended in failure) ----------------------
class _Payload:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return exec, (self.code, {})


def run_agent(server: ServerProcess, fake_hub, fake_llm, code: str) -> tuple[str, bool]:
    script(fake_llm, [("run_python", {"code": code})], "Done.")
    turn = run_turn(server, fake_hub.user_token(f"escape-{uuid.uuid4().hex[:8]}"), "run this")
    assert turn.response["status"] == "completed", turn.response
    out = turn.output_of("run_python")
    return out, "exit code: 0" not in out


def run_training(server: ServerProcess, fake_hub, fake_llm, code: str) -> tuple[str, bool]:
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "escape", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "d.csv", b"a,b\n1,2\n", "data")
        upload(c, mid, "train.py", code.encode(), "code")
        done = wait_training(c, c.post("/mltraining/add", json={"modelid": mid}).json()["id"])
        logs = c.get(f"/mltraining/{done['id']}/logs").text
    assert done["status"] in ("failed", "succeeded", "cancelled"), done
    return f"{logs}\n{done.get('reason')}", done["status"] != "succeeded"


def run_pickle(server: ServerProcess, fake_hub, fake_llm, code: str) -> tuple[str, bool]:
    dep = f"dep-{uuid.uuid4().hex[:8]}"
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "escape", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "model.pkl", pickle.dumps(_Payload(code)), "model")
        assert c.post("/deployment/add", json={"modelid": mid, "deployment_id": dep}).status_code == 201
        status = wait_deployment(c, dep)
        c.delete(f"/deployment/{dep}")
    return str(status.get("reason")), status["status"] == "failed"


RUNNERS: dict[str, Callable[..., tuple[str, bool]]] = {"agent_run_python": run_agent, "mltraining_job": run_training,
                                                       "pickle_load": run_pickle}


def _report(said: str) -> dict:
    assert "REPORT" in said, said[-2000:]  # the attack did run, and reported
    return json.loads(said[said.index("REPORT") + 6:said.index("END", said.index("REPORT"))])


def _pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout.split()


def _still_serves(server: ServerProcess) -> None:
    with server.client() as c:
        assert c.get("/api/config/model").status_code == 200


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("attack", list(PROBES))
def test_probe_is_contained(server, fake_hub, fake_llm, runner, attack):
    said, _ = RUNNERS[runner](server, fake_hub, fake_llm,
                              _program(_source(attack, server, "-"), raise_report=runner == "pickle_load"))
    report = _report(said)
    if attack == "read_other_tenant":
        assert TENANT_SECRET not in json.dumps(report) and not report.get("read"), report
        assert report["listing"] == "FileNotFoundError", report  # the data directory does not exist inside
    elif attack == "read_database":
        assert not report.get("read"), report
    elif attack == "server_environment":
        assert report["canary"] is False and report["server_vars"] is False, report
        assert report["mem"] != "read", report
    elif attack == "connect_server_port":
        assert report["connect"] != "ok", report
    assert TENANT_SECRET not in said and CANARY not in said
    _still_serves(server)


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("attack", list(RESOURCES))
def test_resource_attack_is_contained(server, fake_hub, fake_llm, runner, attack):
    marker = f"esc{uuid.uuid4().hex[:12]}"
    before = _du(server.data_dir)
    said, failed = RUNNERS[runner](server, fake_hub, fake_llm,
                                   _program(_source(attack, server, marker), raise_report=runner == "pickle_load"))
    if attack == "memory_hog":  # refused by the address-space limit: a MemoryError, or a killed run
        assert "MemoryError" in said or failed, said[-2000:]
        assert '"allocated_mb": 20000' not in said
    else:  # stopped by a limit: the run ends in failure (a killed command, a failed job or deployment)
        assert failed, said[-2000:]
    if attack == "disk_filler":  # tried to write 10 GB; the disk limit is 32 MB (x 4: the guard polls)
        assert _du(server.data_dir) - before < 256 * 1024 * 1024
    # Nothing it started is left running.
    deadline = time.monotonic() + 15
    while _pgrep(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _pgrep(marker)
    _still_serves(server)


def _du(path: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def test_training_output_links_are_not_followed(server):
    """A job that leaves links to the server's files as its model and metrics gets neither
    read: the database never becomes a model version a tenant could download."""
    db = server.data_dir / "mlagent.db"
    code = (f"import os\nout = os.environ['MLAGENT_OUTPUT_DIR']\n"
            f"os.symlink({str(db)!r}, os.path.join(out, 'model.pkl'))\n"
            f"os.symlink({str(db)!r}, os.path.join(out, 'metrics.json'))\n"
            f"os.link(os.path.join(out, 'model.pkl'), os.path.join(out, 'hard.pkl'), follow_symlinks=False)\n")
    said, failed = run_training(server, None, None, code)
    assert failed and "no model file" in said, said[-2000:]  # nothing was taken in as the next version
