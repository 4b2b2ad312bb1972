"""The container, as far as it can be checked without Docker (which cannot run here): the
image's entry script run directly, and static checks of the Dockerfile and compose.yaml."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from mlagent.config import Settings

from .harness import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
ENTRY = ROOT / "docker" / "entrypoint.sh"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLAGENT_", "HF_", "AGENT_API_KEY"))}
    # The venv's `mlagent` script, as the image has it on PATH.
    return {**base, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
            "MLAGENT_DATA_DIR": str(tmp_path / "data"), **extra}


def test_entry_script_migrates_then_serves(tmp_path, fake_llm, fake_hub):
    done = subprocess.run(["sh", str(ENTRY), "migrate"], check=False, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "database is at the latest migration" in done.stdout
    assert (tmp_path / "data" / "mlagent.db").exists()

    server = ServerProcess(tmp_path / "data", {"HF_ENDPOINT": fake_hub.url,
                                               "MLAGENT_INFERENCE_BASE_URL": fake_llm.url,
                                               "MLAGENT_LOG_FORMAT": "json"})
    server.env["PATH"] = _env(tmp_path)["PATH"]
    server.argv = ["sh", str(ENTRY)]  # no argument: serve, as the image's CMD
    try:
        server.start(timeout=120)
        with httpx.Client(base_url=server.url) as c:
            assert c.get("/healthz").status_code == 200
            assert c.get("/readyz").json()["status"] == "ready"
    finally:
        server.stop()
    assert "Application shutdown complete" in server.log()  # SIGTERM (what tini forwards) stops cleanly


def test_entry_script_refuses_an_unwritable_data_dir(tmp_path):
    done = subprocess.run(["sh", str(ENTRY)], env=_env(tmp_path, MLAGENT_DATA_DIR="/dev/null/data"),
                          check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "MLAGENT_DATA_DIR /dev/null/data is not writable" in done.stderr


def test_entry_script_runs_other_commands_as_given(tmp_path):
    done = subprocess.run(["sh", str(ENTRY), "echo", "hello"], check=False, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0 and done.stdout == "hello\n"


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_as_non_root_with_the_sandbox_and_a_readiness_check():
    steps = _instructions((ROOT / "Dockerfile").read_text())
    words = [w for w, _ in steps]
    assert words[0] == "FROM"
    users = [rest for w, rest in steps if w == "USER"]
    assert users and users[-1] not in ("root", "0") and words.index("USER") < words.index("ENTRYPOINT")
    runs = " ".join(rest for w, rest in steps if w == "RUN")
    assert "bubblewrap" in runs and "tini" in runs and "useradd" in runs
    for w, rest in steps:
        if w == "COPY":  # every source exists in the build context
            for src in rest.split()[:-1]:
                assert (ROOT / src).exists(), src
    (entry,) = [rest for w, rest in steps if w == "ENTRYPOINT"]
    copied = [rest.split()[-1] for w, rest in steps if w == "COPY" and "entrypoint.sh" in rest]
    assert copied and copied[0] in entry
    (health,) = [rest for w, rest in steps if w == "HEALTHCHECK"]
    assert "/readyz" in health
    expose = " ".join(rest for w, rest in steps if w == "EXPOSE").split()
    assert set(expose) == {"8000", "50051"}
    env = " ".join(rest for w, rest in steps if w == "ENV")
    for name in re.findall(r"(MLAGENT_[A-Z_]+)=", env):
        assert name.removeprefix("MLAGENT_").lower() in Settings.model_fields, name
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignored and ".mlagent" in ignored


def test_compose_has_postgresql_two_replicas_and_the_sandbox_options():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "mlagent"}
    app = services["mlagent"]
    assert app["deploy"]["replicas"] == 2
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    env = app["environment"]
    assert env["MLAGENT_DATABASE_URL"].startswith("postgresql+asyncpg://") and "@postgres:5432/" in env["MLAGENT_DATABASE_URL"]
    for name in env:
        if name.startswith("MLAGENT_"):
            assert name.removeprefix("MLAGENT_").lower() in Settings.model_fields, name
    assert {"seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined",
            "no-new-privileges:true"} <= set(app["security_opt"])
    assert app["cap_drop"] == ["ALL"] and "cap_add" not in app
    assert "data:/data" in app["volumes"] and "data:/data" in services["migrate"]["volumes"]
