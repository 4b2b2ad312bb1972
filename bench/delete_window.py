"""How long replica A still answers a deleted response from memory (runtime/finished.py)
after replica B's `DELETE /v1/responses/{id}` returned: two `mlagent serve` processes on one
PostgreSQL database; for each of N responses, A reads it (kept), B deletes it, then A is
read in a loop until it answers 404. Prints the answers from memory and the time to A's
first 404 (each including one GET). Not a side-by-side figure: the window docs/architecture.md
describes ("Reading a finished response").

    MLAGENT_TEST_DATABASE_URL=postgresql+asyncpg://… python -m bench.delete_window [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import httpx

from .procs import BEARER, fake_llm_proc, load_average, mlagent_proc


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv and argv[0].isdigit() else 30
    from tests.harness import create_pg_database, drop_pg_database

    base = os.environ["MLAGENT_TEST_DATABASE_URL"]
    url = create_pg_database(base)
    try:
        stale, first_404_ms = _measure(url, n)
    finally:
        drop_pg_database(base, url)
    print(f"{n} deletes on B (load average {load_average()}): A answered from memory after B's DELETE "
          f"returned in {sum(1 for s in stale if s)} of them, {sum(stale)} GETs in all (at most {max(stale)} "
          f"after one delete); A's first 404 came {statistics.median(first_404_ms):.1f} ms later "
          f"(median; min {min(first_404_ms):.1f}, max {max(first_404_ms):.1f}), each including one GET")


def _measure(url: str, n: int) -> tuple[list[int], list[float]]:
    """(GETs A answered from memory after each delete, ms to A's first 404 after each)."""
    with fake_llm_proc() as llm, mlagent_proc(llm.url + "/v1", MLAGENT_DATABASE_URL=url) as a, \
            mlagent_proc(llm.url + "/v1", MLAGENT_DATABASE_URL=url) as b, \
            httpx.Client(base_url=a.url, headers=BEARER, timeout=30) as ca, \
            httpx.Client(base_url=b.url, headers=BEARER, timeout=30) as cb:
        for client in (ca, cb):  # both listening (/readyz checks the listener): both keep responses
            deadline = time.monotonic() + 30
            while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
        stale: list[int] = []
        first_404_ms: list[float] = []
        for _ in range(n):
            path = f"/v1/responses/{ca.post('/v1/responses', json={'input': 'bench'}).json()['id']}"
            for _ in range(3):
                assert ca.get(path).status_code == 200
            assert cb.delete(path).status_code == 200
            t0, answered = time.perf_counter(), 0
            while ca.get(path).status_code == 200:
                answered += 1
            first_404_ms.append(1000 * (time.perf_counter() - t0))
            stale.append(answered)
    return stale, first_404_ms


if __name__ == "__main__":
    main()
