"""N concurrent live runs against one mlagent server (bench.streams' figure 4 alone, no relay):
`PYTHONPATH=<tree>/src:<tree> python -m bench.live_runs N [--pg] [--py-spy=OUT]`.

Starts the fake LLM and `mlagent serve` from the tree on PYTHONPATH (so two trees can be
run alternately, before and after a change), runs N streamed runs one client each, 50
chunks 20 ms apart, twice, and prints token p50/p90/p99, completeness and server CPU-s.
`--py-spy=OUT` records the server meanwhile (`py-spy record --format raw`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from .procs import fake_llm_proc, mlagent_proc
from .streams import Side, live, pct


def main(argv: list[str]) -> None:
    n = int(argv[0])
    extra = {}
    if "--pg" in argv:
        from tests.harness import create_pg_database

        extra["MLAGENT_DATABASE_URL"] = create_pg_database(os.environ["MLAGENT_TEST_DATABASE_URL"])
    spy_out = next((a.split("=", 1)[1] for a in argv if a.startswith("--py-spy=")), None)
    with fake_llm_proc() as llm, mlagent_proc(llm.url + "/v1", **extra) as ours:
        side = Side("mlagent", ours, llm)
        live(side, 2, 3, 0)  # warm-up
        spy = None
        if spy_out:
            spy = subprocess.Popen(["py-spy", "record", "-p", str(ours.pid), "-o", spy_out, "--format", "raw",
                                    "-r", "200", "--nonblocking"])
            time.sleep(1)
        for i in range(2):
            lat, complete, secs, cpu = live(side, n, 50, 0.02)
            print(f"run {i}: p50 {pct(lat, 0.5):.1f} p90 {pct(lat, 0.9):.1f} p99 {pct(lat, 0.99):.1f} ms "
                  f"complete {complete}/{n} secs {secs:.2f} server cpu {cpu:.2f} s", flush=True)
        if spy:
            spy.send_signal(2)
            spy.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
