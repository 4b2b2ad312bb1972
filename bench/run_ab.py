"""Before/after of two source trees: server CPU-ms per synchronous agent run and req/s.

Each tree's `mlagent serve` runs as its own process (bench.procs.mlagent_proc, that tree's
sources first on PYTHONPATH) against one instant fake LLM, driven by wrk -c 8 with
`POST /v1/responses`; the two alternate (which goes first flips each round), a 3 s warm-up
per start is not counted. Medians (min-max). A tree is a checkout or `git archive` of a commit:

    git archive <commit> | tar -x -C /tmp/before
    PYTHONPATH=src:. python -m bench.run_ab /tmp/before . [rounds] [seconds] [connections, default 8]
"""

from __future__ import annotations

import statistics
import sys

from .procs import BEARER, fake_llm_proc, mlagent_proc, wrk


def main() -> None:
    trees = {"before": sys.argv[1], "after": sys.argv[2]}
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    seconds = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    connections = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    llm = fake_llm_proc().start()
    res: dict[str, dict[str, list[float]]] = {k: {"cpu": [], "rps": []} for k in trees}
    body, path = {"input": "bench"}, "/v1/responses"
    try:
        for i in range(rounds):
            for name in (list(trees) if i % 2 == 0 else list(trees)[::-1]):
                root = trees[name]
                s = mlagent_proc(llm.url + "/v1", PYTHONPATH=f"{root}/src:{root}").start()
                try:
                    wrk(s, path, connections=connections, seconds=3, method="POST", body=body, headers=BEARER, drain=True)
                    r = wrk(s, path, connections=connections, seconds=seconds, method="POST", body=body, headers=BEARER, drain=True)
                    if r.errors:
                        raise RuntimeError(f"{name}: {r.errors} failed requests")
                    res[name]["cpu"].append(r.cpu_ms_per_request)
                    res[name]["rps"].append(r.rps)
                    print(name, f"{r.cpu_ms_per_request:.1f} CPU-ms/run {r.rps:.1f} req/s p50 {r.p50_ms:.0f} ms",
                          flush=True)
                finally:
                    s.stop()
    finally:
        llm.stop()
    for k, v in res.items():
        print(f"{k}: CPU-ms/run median {statistics.median(v['cpu']):.1f} ({min(v['cpu']):.1f}-{max(v['cpu']):.1f}), "
              f"req/s {statistics.median(v['rps']):.1f} ({min(v['rps']):.1f}-{max(v['rps']):.1f})")


if __name__ == "__main__":
    main()
