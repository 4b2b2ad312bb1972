"""Defect 6: a /mltraining job dies with the server, even a SIGKILLed one, and the record
after the restart says what happened to it.

A real server is killed with SIGKILL while the job (and a child it started) runs. In the
sandbox the whole job dies with the server at once (bwrap --die-with-parent takes its pid
namespace along). In the no-bwrap fallback the job itself dies (PR_SET_PDEATHSIG) but a
child it started can be left over: the restarted server kills the group recorded for the
job. Either way nothing of the job runs after the restart, and the record says so."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from mlagent.sandbox.confine import bwrap_works

from .mlconnector.client import api_client, upload


def _pgrep(pattern: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False).stdout.split()


def _until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("isolation", ["bwrap", "none"])
def test_kill9_of_the_server_leaves_no_job_process_and_a_true_record(make_server, isolation):
    if isolation == "bwrap" and not bwrap_works(shutil.which("bwrap")):
        pytest.skip("bwrap is not usable here")
    marker = f"orphan{uuid.uuid4().hex[:12]}"
    script = (f"import subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)  # {marker}-child'])\n"
              f"print('started', flush=True)\n"
              f"time.sleep(300)\n").encode()
    server = make_server(MLAGENT_SANDBOX_ISOLATION=isolation).start(timeout=90)
    with api_client(server) as c:
        mid = c.post("/model/add", json={"modelname": "sleeper", "modelkind": "regression"}).json()["id"]
        upload(c, mid, "d.csv", b"a,b\n1,2\n", "data")
        upload(c, mid, f"{marker}.py", script, "code")
        training = c.post("/mltraining/add", json={"modelid": mid}).json()
        assert training["status"] == "running", training
        # The job and its child are really running (the marker is in both command lines).
        assert _until(lambda: len(_pgrep(marker)) >= 2, 30), _pgrep(marker)

    server.kill()
    if isolation == "bwrap":  # the sandbox dies with the server, without waiting for a restart
        assert _until(lambda: not _pgrep(marker), 10), _pgrep(marker)
    else:  # the job itself dies with it (PR_SET_PDEATHSIG); its child may be left over
        assert _until(lambda: len(_pgrep(marker)) <= 1, 10), _pgrep(marker)
    left_over = bool(_pgrep(marker))

    again = make_server(data_dir=server.data_dir, MLAGENT_SANDBOX_ISOLATION=isolation).start(timeout=90)
    assert _until(lambda: not _pgrep(marker), 10), f"job processes survived the restart: {_pgrep(marker)}"
    with api_client(again) as c:
        record = c.get(f"/mltraining/{training['id']}").json()
    assert record["status"] == "failed", record
    assert "the server restarted during the job" in record["reason"]
    if left_over:
        assert "were stopped" in record["reason"], record
    else:
        assert "had already ended" in record["reason"], record


def test_a_zombie_left_of_a_job_is_not_a_running_job(tmp_path):
    """After a kill -9 the job's processes die but may wait a while to be reaped (a container's
    init is slow at it): a zombie runs nothing, so the restart's record says the job had ended."""
    from mlagent.jobs import orphans

    proc = subprocess.Popen(["true"], start_new_session=True)  # its own group; not waited for yet
    try:
        stat = Path(f"/proc/{proc.pid}/stat")
        assert _until(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", 10)
        path = tmp_path / "job.pid"
        path.write_text(json.dumps({"pid": proc.pid, "start": orphans.start_time(proc.pid)}))
        assert orphans.reap(path) == "gone"
    finally:
        proc.wait()
