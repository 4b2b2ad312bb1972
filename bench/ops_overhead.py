"""What the operability layer (request ids, predict metrics, contextvars) costs on the
hottest route: one-row predicts, this code vs a baseline checkout, servers side by side.

    git archive <base-commit> src | tar -x -C /tmp/base
    PYTHONPATH=$PWD/src .venv/bin/python -m bench.ops_overhead --baseline-src /tmp/base/src

Both servers run at once on the same machine; rounds alternate between them (so load
changes hit both alike); every figure is the median over the rounds."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from .loadgen import build_request, run
from .predict import HOST, KEY, deploy_mlagent, models, start_mlagent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-src", required=True, help="the src/ directory of the baseline code")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mlagent-ops-bench-"))
    procs = []
    try:
        this_src = os.environ.get("PYTHONPATH", "")
        servers = {}
        for label, src in (("baseline", args.baseline_src), ("this", this_src)):
            os.environ["PYTHONPATH"] = src
            (tmp / label).mkdir()
            proc, port = start_mlagent(tmp / label)
            procs.append(proc)
            servers[label] = port
        os.environ["PYTHONPATH"] = this_src
        name, model, X, y = models()[0]
        reqs = {}
        for label, port in servers.items():
            path = deploy_mlagent(port, name, model, X, y)
            reqs[label] = [build_request(HOST, port, path, {"data": X.iloc[i % len(X)].tolist()}, {"X-API-Key": KEY})
                           for i in range(args.requests)]
        results: dict[str, list] = {label: [] for label in servers}
        for _ in range(args.rounds):
            for label, port in servers.items():
                results[label].append(asyncio.run(run(HOST, port, reqs[label], 1)))
        print(f"one-row predicts ({name}), 1 connection, {args.requests} requests x {args.rounds} alternating rounds")
        p50 = {}
        for label, rs in results.items():
            p50[label] = statistics.median(r.p50_ms for r in rs)
            rps = statistics.median(r.rps for r in rs)
            p99 = statistics.median(r.p99_ms for r in rs)
            print(f"  {label:<9} {rps:8.0f} req/s   p50 {p50[label]:6.2f} ms   p99 {p99:7.2f} ms")
        print(f"  p50 ratio this/baseline: {p50['this'] / p50['baseline']:.2f}")
    finally:
        for p in procs:
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
