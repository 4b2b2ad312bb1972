"""A cheap SSE client for the stream benchmarks, run as its own process so it takes no time
from the server under test: raw asyncio sockets, HTTP/1.1 with a minimal chunked decoder, no
HTTP library. `python -m bench.sse_client` reads a JSON job on stdin:

    {"port": P, "requests": [{"method", "path", "body", "headers"}, ...], "save": path|null}

opens every stream, prints `READY` once all have answered their headers, reads each until a
terminal frame (`response.completed` / `failed` / `cancelled` / `incomplete`) or EOF, and
prints one JSON line: per stream the (token index, latency in ms) of every text delta stamped
`NNNNNN@<send time>;` by the fake LLM (bench/fake_llm.py), frames and bytes read,
the wall time from first request to last stream done, and this process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from pathlib import Path

STAMP = re.compile(rb"(\d{6})@(\d+\.\d+);")
TERMINAL = re.compile(rb"^event: response\.(completed|failed|cancelled|incomplete)$", re.MULTILINE)


async def one(port: int, req: dict, ready: asyncio.Event, heads: list[int], total: int, save: str | None) -> dict:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    body = json.dumps(req["body"]).encode() if req.get("body") is not None else b""
    headers = {"Host": f"127.0.0.1:{port}", "Accept": "text/event-stream", **req.get("headers", {})}
    if body:
        headers |= {"Content-Type": "application/json", "Content-Length": str(len(body))}
    head = f"{req['method']} {req['path']} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    status_head = await reader.readuntil(b"\r\n\r\n")
    status = int(status_head.split(b" ", 2)[1])
    chunked = b"transfer-encoding: chunked" in status_head.lower()
    heads[0] += 1
    if heads[0] == total:
        ready.set()
    stamps: list[tuple[int, float]] = []  # (token index, latency ms)
    frames = nbytes = 0
    buf = b""
    saved = bytearray() if save else None
    done = status != 200
    while not done:
        if chunked:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                break
            data = (await reader.readexactly(size + 2))[:-2]
        else:
            data = await reader.read(1 << 16)
            if not data:
                break
        now = time.time()
        nbytes += len(data)
        if saved is not None:
            saved += data
        buf += data
        *complete, buf = buf.split(b"\n\n")
        for frame in complete:
            frames += 1
            if b"output_text.delta" in frame:
                stamps.extend((int(i), (now - float(sent)) * 1000) for i, sent in STAMP.findall(frame))
            if TERMINAL.search(frame):
                done = True
    writer.close()
    if saved is not None:
        Path(save).write_bytes(saved)  # once, after the stream ended
    return {"status": status, "stamps": stamps, "frames": frames, "bytes": nbytes}


async def main() -> None:
    job = json.loads(sys.stdin.readline())
    ready = asyncio.Event()
    total = len(job["requests"])
    heads = [0]
    t0 = time.time()
    tasks = [asyncio.create_task(one(job["port"], r, ready, heads, total, job.get("save") if i == 0 else None))
             for i, r in enumerate(job["requests"])]
    await ready.wait()
    print("READY", flush=True)
    results = await asyncio.gather(*tasks)
    print(json.dumps({"streams": results, "seconds": time.time() - t0, "client_cpu": time.process_time()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
