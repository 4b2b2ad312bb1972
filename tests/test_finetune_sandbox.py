"""The local fine-tuning trainer is sandboxed as every job is (docs/security.md): it runs on
the server's job backend, so it gets what a `/mltraining` job gets, not a sandbox of its
own. Seen from outside, through a real server: while a job trains, its trainer runs as
`nobody`, in a network namespace of its own, and in a per-sandbox pids cgroup of this server
whose `pids.max` is `MLAGENT_JOB_MAX_PROCESSES` (plus bwrap's two); a cancel ends it and
the group is removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mlagent.sandbox.cgroups import BWRAP_TASKS

from .api_servers import client, start_api_server, wait_job
from .harness import ServerProcess, needs_bwrap

PIDS_ROOT = Path("/sys/fs/cgroup/pids/mlagent-untrusted")
MAX_PROCESSES = 40  # not a default anywhere: the group's pids.max can only come from this setting
NOBODY = 65534


def _groups(server: ServerProcess) -> list[Path]:
    """The per-sandbox pids cgroups this server made (named `<server pid>-<n>`)."""
    assert server.proc is not None
    return [g for g in PIDS_ROOT.iterdir() if g.name.startswith(f"{server.proc.pid}-")] if PIDS_ROOT.is_dir() else []


def _trainers(group: Path) -> list[int]:
    """The processes in `group` that belong to a fine-tuning trainer (bwrap and the Python process)."""
    found = []
    try:
        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
    except OSError:
        return []
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"mlagent.finetune.train" in argv:
            found.append(pid)
    return found


def _uid(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _until(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


@needs_bwrap
def test_the_trainer_runs_in_its_own_pids_cgroup_as_nobody_without_network(tmp_path, fake_llm, fake_hub):
    if os.getuid() != 0 or not PIDS_ROOT.parent.is_dir():
        pytest.skip("the server cannot make pids cgroups here (not root, or no cgroup v1 pids hierarchy)")
    server = start_api_server(tmp_path, fake_llm, fake_hub, MLAGENT_SANDBOX_ISOLATION="bwrap",
                              MLAGENT_JOB_MAX_PROCESSES=str(MAX_PROCESSES))
    try:
        with client(server) as c:
            big = c.post("/ml-api/files/", files={"file": ("big.txt", b"lorem ipsum dolor sit amet " * 20000)})
            job = c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "tiny-gpt2", "training_file": big.json()["id"],
                                                            "compute_config": {"epochs": 200}}).json()
            # The trainer, found in one of this server's per-sandbox groups (and nowhere else).
            found = _until(lambda: [(g, p) for g in _groups(server) for p in _trainers(g)], 120)
            assert found, (c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json(), server.log()[-3000:])
            [group] = {g for g, _ in found}
            assert (group / "pids.max").read_text().strip() == str(MAX_PROCESSES + BWRAP_TASKS)
            assert c.get(f"/ml-api/fine-tuning-jobs/{job['id']}/").json()["status"] == "running"
            # bwrap and setpriv (root) come first; then the trainer's Python, as nobody, in the same group.
            boxed = _until(lambda: [p for p in _trainers(group) if _uid(p) == NOBODY], 60)
            assert boxed, ("the trainer does not run as nobody in its group", _trainers(group))
            nets = {os.readlink(f"/proc/{p}/ns/net") for p in boxed}
            assert nets and os.readlink("/proc/self/ns/net") not in nets  # a network namespace of its own

            r = c.post(f"/ml-api/fine-tuning-jobs/{job['id']}/cancel/")
            assert r.status_code == 200, r.text
            assert wait_job(c, job["id"])["status"] == "cancelled"
        assert _until(lambda: not group.exists(), 30), f"{group} was not removed after the trainer ended"
    finally:
        server.stop()
