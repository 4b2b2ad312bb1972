"""How long `mlagent attach` takes to replay a long turn, against reading the stream raw.

Starts the real server (SQLite, fake LLM) and runs one turn whose answer streams as N text
deltas (so the log holds about N + 10 events). Then, several times each, measures the wall
time of: reading the whole SSE stream with httpx (the baseline: no client at all);
`mlagent --version` (the client's start-up alone); `mlagent attach --json` into a pipe;
`mlagent attach` into a pipe (plain lines); `mlagent attach` in a pseudo-terminal (rich's
live footer). Prints medians and each one's ratio to the baseline measured in the same run.

    .venv/bin/python bench/cli_replay.py [deltas] [runs]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import pexpect  # noqa: E402

from tests.fakes.hub import FakeHub  # noqa: E402
from tests.fakes.llm import FakeLLM, Reply  # noqa: E402
from tests.harness import ServerProcess, iter_sse, wait_status  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    deltas = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    llm, hub = FakeLLM().start(), FakeHub().start()
    server = ServerProcess(Path(tempfile.mkdtemp()), {"HF_ENDPOINT": hub.url, "MLAGENT_INFERENCE_BASE_URL": llm.url,
                                                      "MLAGENT_LLM_MAX_RETRIES": "0"}).start(timeout=120)
    token = hub.user_token("bench")
    try:
        llm.push(Reply(text="word " * deltas, chunks=deltas))
        with server.client(token) as c:
            rid = c.post("/v1/responses", json={"input": "long", "background": True}).json()["id"]
            assert wait_status(c, rid, {"completed"}, timeout=600)["status"] == "completed"
            with c.stream("GET", f"/v1/responses/{rid}/events") as r:
                events = sum(1 for _ in iter_sse(r))
        env = {**os.environ, "MLAGENT_URL": server.url, "HF_TOKEN": token, "COLUMNS": "120"}
        cli = [sys.executable, "-m", "mlagent.cli"]

        def pipe(*args: str) -> None:
            subprocess.run([*cli, *args], env=env, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)

        def pty() -> None:
            child = pexpect.spawn(cli[0], [*cli[1:], "attach", rid], env=env, dimensions=(40, 120), timeout=600)
            child.expect(pexpect.EOF)
            child.close()
            assert child.exitstatus == 0

        cases = {
            "raw SSE read (httpx, baseline)": lambda: httpx_read(server.url, token, rid),
            "mlagent --version (start-up)": lambda: pipe("--version"),
            "mlagent attach --json | pipe": lambda: pipe("attach", rid, "--json"),
            "mlagent attach | pipe (plain)": lambda: pipe("attach", rid),
            "mlagent attach in a pty (live)": pty,
        }
        print(f"replaying a turn of {events} events; median wall time of {runs} runs")
        base = None
        for name, fn in cases.items():
            fn()  # warm up
            t = statistics.median(timed(fn) for _ in range(runs))
            base = base or t
            print(f"{name:34s} {t * 1e3:9.1f} ms   {t / base:6.2f}x baseline")
    finally:
        server.stop()
        llm.stop()
        hub.stop()


def httpx_read(url: str, token: str, rid: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c, \
            c.stream("GET", f"/v1/responses/{rid}/events") as r:
        for _ in iter_sse(r):
            pass


if __name__ == "__main__":
    main()
