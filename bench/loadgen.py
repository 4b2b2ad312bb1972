"""A minimal keep-alive HTTP/1.1 load generator on raw asyncio streams.

httpx costs more CPU per request than the servers under test; on a 2-core machine that would
flatten every ratio. This writes pre-built requests and reads Content-Length (or chunked)
responses, nothing more."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any


def build_request(host: str, port: int, path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode() + data


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = b""
    while True:  # chunked
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


async def _connection(host: str, port: int, requests: list[bytes], latencies: list[float],
                      bodies: list[bytes] | None) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for req in requests:
            t0 = time.perf_counter()
            writer.write(req)
            status, body = await _read_response(reader)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
            if bodies is not None:
                bodies.append(body)
    finally:
        writer.close()


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def run(host: str, port: int, requests: list[bytes], connections: int = 1,
              bodies: list[bytes] | None = None) -> Result:
    """Send `requests` over `connections` keep-alive connections (round-robin split)."""
    latencies: list[float] = []
    parts = [requests[i::connections] for i in range(connections)]
    t0 = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, p, latencies, bodies if connections == 1 else None)
                           for p in parts))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return Result(len(requests), elapsed, statistics.median(latencies) * 1e3,
                  latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3)
