"""How much do contained attacks slow the server down? (issue 11: "the server's latency on a
cheap GET stays under 2x its idle figure" during the sandbox escape suite's attacks).

Starts the real server with the escape suite's small limits (tests/test_sandbox_escapes.py),
measures `GET /api/config/model` idle, then while each resource attack (fork bomb, memory
hog, endless loop, disk filler) runs in each place that runs user code (the agent's
run_python, a /mltraining job, a pickle loaded by a serving worker). Prints the median
latency of several runs idle and under each attack, and the ratio to idle measured in the
same run. A figure, not an assertion: it depends on the machine (the box's cores are shared).

    .venv/bin/python bench/sandbox_pressure.py [gets-per-run] [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.agent_support import agent_env  # noqa: E402
from tests.fakes.hub import FakeHub  # noqa: E402
from tests.fakes.llm import FakeLLM  # noqa: E402
from tests.harness import ServerProcess  # noqa: E402
from tests.test_sandbox_escapes import LIMITS, RESOURCES, RUNNERS, _program, _source  # noqa: E402


def latency(client: httpx.Client, gets: int) -> float:
    """Median seconds of `gets` cheap GETs."""
    times = []
    for _ in range(gets):
        start = time.perf_counter()
        client.get("/api/config/model").raise_for_status()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    gets = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    llm, hub = FakeLLM().start(), FakeHub().start()
    server = ServerProcess(Path(tempfile.mkdtemp()), agent_env(hub, llm, **LIMITS)).start(timeout=120)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            latency(c, gets)  # warm up
            idle = statistics.median(latency(c, gets) for _ in range(runs))
            print(f"GET /api/config/model, median of {runs} runs x {gets} calls: idle {idle * 1000:.2f} ms")
            print("each attack: idle measured just before it (the machine is shared), then during it")
            print(f"{'attack':<14} {'runner':<18} {'idle ms':>8} {'during ms':>10} {'x idle':>7} {'samples':>8}")
            ratios = []
            for attack in RESOURCES:
                for runner_name, runner in RUNNERS.items():
                    before = statistics.median(latency(c, max(5, gets // 5)) for _ in range(runs))
                    code = _program(_source(attack, server, f"bench{uuid.uuid4().hex[:8]}"),
                                    raise_report=runner_name == "pickle_load")
                    attack_thread = threading.Thread(target=runner, args=(server, hub, llm, code), daemon=True)
                    attack_thread.start()
                    time.sleep(0.5)  # let it start
                    samples = []
                    while attack_thread.is_alive() and len(samples) < runs * 4:
                        samples.append(latency(c, max(5, gets // 5)))
                    attack_thread.join(120)
                    if not samples:
                        samples.append(latency(c, gets))
                    under = statistics.median(samples)
                    ratios.append(under / before)
                    print(f"{attack:<14} {runner_name:<18} {before * 1000:>8.2f} {under * 1000:>10.2f} "
                          f"{under / before:>7.2f} {len(samples):>8}")
            print(f"median ratio over all attacks: {statistics.median(ratios):.2f}; worst: {max(ratios):.2f}")
    finally:
        server.stop()
        llm.stop()
        hub.stop()


if __name__ == "__main__":
    main()
