"""Predict latency of two mlagent source trees and the wire floor, side by side, interleaved.

    python -m bench.predict_ab --tree main=/path/to/main/src --tree new=src --model ridge --rows 1 --connections 1

Each tree's server (`mlagent serve` importing that tree's `mlagent`) and the wire floor
(bare_apps.floor_app) run as their own processes; the same Ridge or forest model is deployed
on each tree, and wrk drives them with the same request bodies in rotating order, several
runs. Printed per server: req/s, p50/p90/p95/p98/p99/p99.5/p99.9 and max, server CPU per
request, p99/p50 (medians of the runs). What stop 14's "Round 4" table in
docs/performance.md was measured with."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from . import predict as bp
from .wrkrun import LUA, tree_cpu

PERCENTILES = (50, 90, 95, 98, 99, 99.5, 99.9)
DONE = """function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d rps=%.0f", summary.requests, summary.requests / summary.duration * 1e6))
  for _, p in ipairs({PERCENTILES}) do io.write(string.format(" p%s=%.3f", p, latency:percentile(p) / 1000)) end
  io.write(string.format(" max=%.3f\\n", latency.max / 1000))
end
""".replace("PERCENTILES", ", ".join(map(str, PERCENTILES)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a tree's src directory")
    parser.add_argument("--model", default="ridge", choices=("ridge", "rf100"))
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="predict-ab-"))
    lua = root / "pct.lua"
    lua.write_text(LUA.split("function done")[0] + DONE)
    servers: dict[str, tuple[bp.Proc, int, str]] = {}
    _, model, X, y = next(m for m in bp.models() if m[0] == args.model)
    try:
        for spec in args.tree:
            name, _, src = spec.partition("=")
            (root / name).mkdir()
            proc, port = bp.start_mlagent(root / name, Path(src))
            servers[name] = (proc, port, bp.deploy_mlagent(port, "ab", model, X, y))
        floor, floor_port = bp.start_floor(root)
        servers[bp.FLOOR] = (floor, floor_port, "")
        floor.wait_http(f"http://{bp.HOST}:{floor_port}/")
        path = next(p for _, _, p in servers.values() if p)
        bodies = root / "bodies.txt"
        bodies.write_bytes(b"\n".join(json.dumps({"data": b[0] if args.rows == 1 else b}).encode()
                                      for b in bp.batches(X, args.rows)) + b"\n")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        names = list(servers)
        for i in range(args.runs + 1):  # the first pass warms up, uncounted
            for name in names[i % len(names):] + names[:i % len(names)]:
                proc, port, _ = servers[name]
                before = tree_cpu(proc.pid)
                out = subprocess.run(["wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds if i else 1}s",
                                      "-s", str(lua), f"http://{bp.HOST}:{port}", "--", str(bodies), path,
                                      f"X-API-Key: {bp.KEY}"], capture_output=True, text=True, check=True).stdout
                line = next(ln for ln in out.splitlines() if ln.startswith("RESULT"))
                figures = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
                figures["cpu_us"] = (tree_cpu(proc.pid) - before) * 1e6 / figures["requests"]
                if i:
                    results[name].append(figures)
        print(f"{args.model}, {args.rows} row(s), wrk -c {args.connections}, median of {args.runs} runs of "
              f"{args.seconds} s (ms; CPU µs per request); load average {os.getloadavg()[0]:.1f}")
        for name, runs in results.items():
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            ratio = statistics.median(r["p99"] / r["p50"] for r in runs)
            print(f"{name:12s} " + " ".join(f"{k}={v:.2f}" for k, v in med.items() if k != "requests")
                  + f" p99/p50={ratio:.1f}")
    finally:
        for proc, _, _ in servers.values():
            proc.stop()


if __name__ == "__main__":
    main()
