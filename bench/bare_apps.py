"""The bare baselines, each served as its own uvicorn process exactly as mlagent's server is
(bench/procs.py `uvicorn_proc`), so a ratio measures mlagent's own work and nothing else.

- `get_app`: FastAPI, `GET /v1/responses/{id}` answering the JSON body in BENCH_BODY_FILE
  (the same bytes mlagent answered), parsed once and serialised per request by FastAPI.
- `replay_app`: Starlette, `GET /replay` streaming the SSE frames in BENCH_FRAMES_FILE (the
  frames mlagent replayed), one write per frame.
- `relay_app`: a bare relay of the same fake LLM: `POST /stream` calls the LLM and relays each
  chunk as an SSE frame to its caller; `POST /runs` starts a call in the background and
  `GET /runs/{id}/events` follows it (fan-out: every follower gets each frame, encoded once).
- `floor_app`: plain ASGI, no framework: any `POST` read to its end and answered with one
  constant JSON body. The least an HTTP server on this machine does per request: its
  latency percentiles, driven like mlagent's, are the floor a predict's p99/p50 stands on
  (bench/predict.py's "wire floor").
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path

import httpx
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

# -- GET ---------------------------------------------------------------------------------
get_app = FastAPI()
_BODY = json.loads(Path(os.environ["BENCH_BODY_FILE"]).read_text()) if os.environ.get("BENCH_BODY_FILE") else {}


@get_app.get("/healthz")
async def _get_health() -> dict:
    return {"status": "ok"}


@get_app.get("/v1/responses/{response_id}")
async def _get_response(response_id: str) -> dict:
    return _BODY


# -- replay ------------------------------------------------------------------------------
def _frames() -> list[bytes]:
    path = os.environ.get("BENCH_FRAMES_FILE")
    if not path:
        return []
    raw = Path(path).read_bytes()
    return [f + b"\n\n" for f in raw.split(b"\n\n") if f.strip()]


_FRAMES = _frames()


async def _replay(request: Request) -> StreamingResponse:
    async def gen():
        for frame in _FRAMES:
            yield frame
    return StreamingResponse(gen(), media_type="text/event-stream")


async def _health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


replay_app = Starlette(routes=[Route("/healthz", _health), Route("/replay", _replay)])


# -- relay -------------------------------------------------------------------------------
LLM_URL = os.environ.get("BENCH_LLM_URL", "http://127.0.0.1:9/v1")
_client = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=None, max_keepalive_connections=100))
_runs: dict[str, list[asyncio.Queue]] = {}
_ids = itertools.count()


async def _llm_frames():
    """The LLM's stream, each content chunk as one SSE frame, then a completed frame."""
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    async with _client.stream("POST", f"{LLM_URL}/chat/completions", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:])["choices"]:
                    if choice["delta"].get("content"):
                        data = json.dumps({"type": "response.output_text.delta", "delta": choice["delta"]["content"]})
                        yield f"event: response.output_text.delta\ndata: {data}\n\n".encode()
    yield b'event: response.completed\ndata: {"type": "response.completed"}\n\n'


async def _stream(request: Request) -> StreamingResponse:
    return StreamingResponse(_llm_frames(), media_type="text/event-stream")


async def _start(request: Request) -> JSONResponse:
    run_id = str(next(_ids))
    followers: list[asyncio.Queue] = []
    _runs[run_id] = followers

    async def pump() -> None:
        async for frame in _llm_frames():
            for q in followers:
                q.put_nowait(frame)
        for q in followers:
            q.put_nowait(None)
        _runs.pop(run_id, None)

    asyncio.get_running_loop().create_task(pump())
    return JSONResponse({"id": run_id})


async def _follow(request: Request) -> StreamingResponse:
    q: asyncio.Queue = asyncio.Queue()
    _runs[request.path_params["run_id"]].append(q)

    async def gen():
        yield b": subscribed\n\n"
        while (frame := await q.get()) is not None:
            yield frame
    return StreamingResponse(gen(), media_type="text/event-stream")


relay_app = Starlette(routes=[Route("/healthz", _health), Route("/stream", _stream, methods=["POST"]),
                              Route("/runs", _start, methods=["POST"]), Route("/runs/{run_id}/events", _follow)])


# -- floor -------------------------------------------------------------------------------
_FLOOR_BODY = b'{"prediction":[0.0]}'
_FLOOR_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_FLOOR_BODY)).encode())]


async def floor_app(scope: dict, receive, send) -> None:  # noqa: ANN001 - plain ASGI
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": _FLOOR_HEADERS})
    await send({"type": "http.response.body", "body": _FLOOR_BODY})
