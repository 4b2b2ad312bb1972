"""`GET /v1/responses/{id}` of a finished response vs a bare FastAPI GET answering the same body.

mlagent (SQLite, or PostgreSQL with --pg) and the bare app (bench/bare_apps.py `get_app`)
each run as their own uvicorn process with the same settings; wrk -c 32 drives both in
interleaved runs: requests/s, latency p50 and server CPU-ms per request.

    python -m bench.get_response [--quick] [--pg [--uncached]]

`--uncached` (PostgreSQL only) turns the server's LISTEN/NOTIFY off (`MLAGENT_PG_NOTIFY=false`):
without a listener hearing deletes a replica keeps no finished response in memory
(runtime/finished.py), so every GET reads the database: the cache-miss path.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import httpx

from .procs import (
    BEARER,
    Figure,
    fake_llm_proc,
    interleave,
    mlagent_proc,
    print_table,
    quick_flag,
    uvicorn_proc,
    wrk,
)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    runs, seconds = (2, 3) if quick_flag(argv) else (5, 10)
    extra = {}
    if "--pg" in argv:
        from tests.harness import create_pg_database

        extra["MLAGENT_DATABASE_URL"] = create_pg_database(os.environ["MLAGENT_TEST_DATABASE_URL"])
        if "--uncached" in argv:
            extra["MLAGENT_PG_NOTIFY"] = "false"
    rps = Figure("GET a finished response, -c 32", "req/s")
    cpu = Figure("server CPU per request", "CPU-ms", higher_is_better=False)
    p50 = Figure("latency p50, -c 32", "ms", higher_is_better=False)
    with fake_llm_proc() as llm, mlagent_proc(llm.url + "/v1", **extra) as ours:
        created = httpx.post(ours.url + "/v1/responses", json={"input": "bench"}, headers=BEARER, timeout=60)
        assert created.status_code == 200 and created.json()["status"] == "completed", created.text
        path = f"/v1/responses/{created.json()['id']}"
        body = httpx.get(ours.url + path, headers=BEARER).content
        body_file = Path(tempfile.mkdtemp(prefix="bench-get-")) / "body.json"
        body_file.write_bytes(body)
        with uvicorn_proc("bare-fastapi", "bench.bare_apps:get_app", BENCH_BODY_FILE=str(body_file)) as bare:
            assert httpx.get(bare.url + path).content == body  # the same bytes on the wire

            def load(server, headers, side: str) -> None:
                r = wrk(server, path, connections=32, seconds=seconds, headers=headers)
                if r.errors:
                    raise RuntimeError(f"{server.name}: {r.errors} failed requests\n{server.log()[-2000:]}")
                getattr(rps, side).append(r.rps)
                getattr(cpu, side).append(r.cpu_ms_per_request)
                getattr(p50, side).append(r.p50_ms)

            load(ours, BEARER, "ours"), load(bare, {}, "base")  # warm-up
            for f in (rps, cpu, p50):
                f.ours.clear(), f.base.clear()
            interleave(runs, lambda: load(ours, BEARER, "ours"), lambda: load(bare, {}, "base"))
    db = ("PostgreSQL, every GET reads the database" if "MLAGENT_PG_NOTIFY" in extra
          else "PostgreSQL" if extra else "SQLite")
    print_table(f"GET /v1/responses/{{id}} ({db}, {len(body)} B body) vs bare FastAPI "
                f"({runs} interleaved runs of {seconds} s)", [rps, cpu, p50], "bare FastAPI")


if __name__ == "__main__":
    main()
