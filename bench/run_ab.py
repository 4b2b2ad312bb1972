"""Before/after of two source trees: server CPU-ms per synchronous agent run and req/s.

Each tree's `mlagent serve` runs as its own process (bench.procs.mlagent_proc, that tree's
sources first on PYTHONPATH) against one instant fake LLM, driven by wrk -c 8 with
`POST /v1/responses`; the two alternate (which goes first flips each round), a 3 s warm-up
per start is not counted. Medians (min-max). A tree is a checkout or `git archive` of a commit:

    git archive <commit> | tar -x -C /tmp/before
    PYTHONPATH=src:. python -m bench.run_ab /tmp/before . [rounds] [seconds] [connections, default 8] [--together]

`--together` loads both servers at the same time instead of one after the other: on a
machine whose load changes from minute to minute both then meet the same conditions (and
compete with each other for the CPU, which favours the one that needs less of it).
"""

from __future__ import annotations

import statistics
import sys
import threading

from .procs import BEARER, Proc, fake_llm_proc, load_average, mlagent_proc, wrk


def main() -> None:
    argv = [a for a in sys.argv[1:] if a != "--together"]
    trees = {"before": argv[0], "after": argv[1]}
    rounds = int(argv[2]) if len(argv) > 2 else 3
    seconds = int(argv[3]) if len(argv) > 3 else 15
    connections = int(argv[4]) if len(argv) > 4 else 8
    together = "--together" in sys.argv
    llm = fake_llm_proc().start()
    res: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "rps": []} for k in trees}
    body, path = {"input": "bench"}, "/v1/responses"

    def start(name: str) -> Proc:
        root = trees[name]
        return mlagent_proc(llm.url + "/v1", PYTHONPATH=f"{root}/src:{root}").start()

    def load(name: str, s: Proc) -> None:
        wrk(s, path, connections=connections, seconds=3, method="POST", body=body, headers=BEARER, drain=True)
        r = wrk(s, path, connections=connections, seconds=seconds, method="POST", body=body, headers=BEARER, drain=True)
        if r.errors:
            raise RuntimeError(f"{name}: {r.errors} failed requests")
        res[name]["cpu"].append(r.cpu_ms_per_request)
        res[name]["rps"].append(r.rps)
        print(name, f"{r.cpu_ms_per_request:.1f} CPU-ms/run {r.rps:.1f} req/s p50 {r.p50_ms:.0f} ms", flush=True)

    try:
        for i in range(rounds):
            order = list(trees) if i % 2 == 0 else list(trees)[::-1]
            if together:
                servers = {name: start(name) for name in order}
                try:
                    threads = [threading.Thread(target=load, args=(name, s)) for name, s in servers.items()]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                finally:
                    for s in servers.values():
                        s.stop()
                continue
            for name in order:
                s = start(name)
                try:
                    load(name, s)
                finally:
                    s.stop()
    finally:
        llm.stop()
    print(f"load average {load_average()}")
    for k, v in res.items():
        print(f"{k}: CPU-ms/run median {statistics.median(v['cpu']):.1f} ({min(v['cpu']):.1f}-{max(v['cpu']):.1f}), "
              f"req/s {statistics.median(v['rps']):.1f} ({min(v['rps']):.1f}-{max(v['rps']):.1f})")


if __name__ == "__main__":
    main()
