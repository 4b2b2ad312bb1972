"""Start the real server as a separate process and talk to it as a client would."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlagent.sandbox.runner import bwrap_works

from .fakes.serve import free_port


class ServerProcess:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"server-{self.port}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MLAGENT_", "HF_", "AGENT_API_KEY"))}
        self.env = {**base, "MLAGENT_HOST": "127.0.0.1", "MLAGENT_PORT": str(self.port),
                    "MLAGENT_DATA_DIR": str(data_dir), "MLAGENT_GRPC_PORT": "0", "MLAGENT_LOG_LEVEL": "info",
                    "MLAGENT_KEEPALIVE_SECONDS": "1", **env}
        self.proc: subprocess.Popen | None = None
        self.argv = [sys.executable, "-m", "mlagent.cli", "serve"]  # a test may run a wrapper module instead

    def start(self, timeout: float = 90) -> ServerProcess:  # generous: CI machines can be loaded
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/api/config/model", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "_log", None):
            self._log.close()

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)


@dataclass
class SSE:
    event: str | None
    data: str
    id: str | None

    def json(self) -> dict[str, Any]:
        return json.loads(self.data)


def iter_sse(response: httpx.Response, comments: list[str] | None = None) -> Iterator[SSE]:
    """Parse a text/event-stream response (keep-alive comments go to `comments`)."""
    event = ident = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SSE(event, "\n".join(data), ident)
            event = ident = None
            data = []
        elif line.startswith(":"):
            if comments is not None:
                comments.append(line)
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                ident = value


def collect_sse(client: httpx.Client, method: str, url: str, **kw: Any) -> list[SSE]:
    with client.stream(method, url, **kw) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(iter_sse(r))


def wait_status(client: httpx.Client, response_id: str, statuses: set[str], timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/responses/{response_id}").json()
        if body["status"] in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def pg_admin_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def create_pg_database(base_url: str) -> str:
    import asyncpg

    name = f"mlagent_t_{uuid.uuid4().hex[:10]}"

    async def go() -> None:
        conn = await asyncpg.connect(pg_admin_url(base_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    head, _, _ = base_url.rpartition("/")
    return f"{head}/{name}"


def drop_pg_database(base_url: str, url: str) -> None:
    import asyncpg

    name = url.rpartition("/")[2]

    async def go() -> None:
        conn = await asyncpg.connect(pg_admin_url(base_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(go())


# Tests of real bwrap isolation; .ci/run installs bubblewrap, elsewhere they skip saying why.
needs_bwrap = pytest.mark.skipif(not bwrap_works(shutil.which("bwrap")),
                                 reason="bwrap is not installed or not usable here (.ci/run installs bubblewrap)")
