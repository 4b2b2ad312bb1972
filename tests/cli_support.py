"""Drive the real `mlagent` command: in a pseudo-terminal (pexpect), as a plain subprocess,
and through a TCP proxy whose connections a test can cut."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
from typing import Any

import pexpect

from .harness import ServerProcess

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\r")
RESPONSE_ID = re.compile(r"resp_[0-9a-f]{32}")


def plain(text: str) -> str:
    """Terminal output without colour, cursor moves and hyperlinks."""
    return ANSI.sub("", text)


def cli_env(url: str, token: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLAGENT_", "HF_"))}
    env.update({"MLAGENT_URL": url, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50", **extra})
    env.pop("NO_COLOR", None)
    if token:
        env["HF_TOKEN"] = token
    return env


def spawn(args: list[str], env: dict[str, str], timeout: float = 30) -> pexpect.spawn:
    """The CLI in a pseudo-terminal, 200 columns wide (lines do not wrap)."""
    child = pexpect.spawn(sys.executable, ["-m", "mlagent.cli", *args], env=env, encoding="utf-8",
                          dimensions=(50, 200), timeout=timeout)
    child.logfile_read = io.StringIO()  # the whole transcript, for `finish`
    return child


def finish(child: pexpect.spawn, timeout: float = 30) -> tuple[int, str]:
    """Wait for the end; the exit code and everything it printed (plain)."""
    child.expect(pexpect.EOF, timeout=timeout)
    child.close()
    return child.exitstatus, plain(child.logfile_read.getvalue())


def run_cli(args: list[str], env: dict[str, str], timeout: float = 30, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """The CLI with no terminal (stdin from `stdin` or nothing)."""
    return subprocess.run([sys.executable, "-m", "mlagent.cli", *args], check=False, env=env,
                          capture_output=True, text=True,
                          timeout=timeout, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class CuttableProxy:
    """A TCP proxy to `server`; `cut()` drops every open connection (as a network failure
    would) while new ones are still accepted."""

    def __init__(self, server: ServerProcess) -> None:
        self.target = ("127.0.0.1", server.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.accepted += 1
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(sockets) // 2

    def close(self) -> None:
        self._listener.close()
        self.cut()
