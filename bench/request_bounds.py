"""What the JSON checks of api/limits.py cost, against `json.loads` of the same body (the
parse every JSON route pays anyway). Bodies: a one-row predict, a 10,000-row predict, a
turn at the 400,000-character input cap, and two attacks 65,000-100,000 levels deep (for
which `json.loads` raises RecursionError, shown as the time it takes to fail): one a run of
brackets (caught by a substring search), one built to have no long run (the cumsum path). Prints the median
of several runs of each and the ratio check/parse measured in the same run.

    .venv/bin/python bench/request_bounds.py [runs]
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mlagent.api.limits import _NUL_ESCAPE, json_too_deep

DEPTH = 64


def bodies() -> dict[str, bytes]:
    row = [0.5 + i for i in range(20)]
    return {
        "predict, 1 row": json.dumps({"data": row}).encode(),
        "predict, 10k rows": json.dumps({"data": [row] * 10_000}).encode(),
        "turn, 400k chars": json.dumps({"input": [{"role": "user", "content": "word " * 20_000}] * 4}).encode(),
        "attack, 100k deep": b"[" * 100_000 + b"]" * 100_000,
        "attack, no long run": b"[[]," * 65_000 + b"0" + b"]" * 65_000,  # deep, but never 65 "[" in a row
    }


def check(raw: bytes) -> None:
    json_too_deep(raw, DEPTH)
    if b"u0000" in raw:
        _NUL_ESCAPE.search(raw)


def parse(raw: bytes) -> None:
    with contextlib.suppress(RecursionError):
        json.loads(raw)


def median_seconds(fn: Callable[[bytes], None], raw: bytes, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(raw)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(runs: int = 21) -> None:
    print(f"{'body':<20} {'bytes':>10} {'check µs':>10} {'parse µs':>10} {'check/parse':>12}")
    for name, raw in bodies().items():
        c, p = median_seconds(check, raw, runs), median_seconds(parse, raw, runs)
        print(f"{name:<20} {len(raw):>10,} {c * 1e6:>10.1f} {p * 1e6:>10.1f} {c / p:>12.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)
