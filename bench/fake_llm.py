"""The tests' fake LLM (tests/fakes/llm.py) served from its own process, for benchmarks:
`python -m bench.fake_llm PORT`. It answers OpenAI chat completions at once (streamed, as
the tests script it). The same process serves the fake Hub's routes (tests/fakes/hub.py),
which knows one token, `HF_TOKEN` below, for the user `bench` (mlagent caches whoami).
Two control routes let a benchmark script the LLM from outside:

- `POST /bench/reply` `{"text", "chunks", "chunk_delay", "hold", "stamps"}` sets the default
  answer (`hold`: every answer waits until `POST /bench/release`; `stamps`: N, the answer is N
  chunks `NNNNNN@<send wall time>;`, stamped as each is sent, so a client of many concurrent
  runs can tell every token's latency);
- `GET /bench/chunk_times` returns (and clears) the wall-clock send time of every text chunk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import uvicorn
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.routing import Route

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM, Reply

HF_TOKEN = "hf_bench0000000000000000"


def build() -> FakeLLM:
    llm = FakeLLM()
    hub = FakeHub()
    hub.tokens[HF_TOKEN] = hub.tokens.pop(hub.user_token("bench"))
    llm.app.router.routes.extend(hub.app.router.routes)
    stamped: dict = {"n": 0, "delay": 0.0}
    original = next(r for r in llm.app.router.routes if getattr(r, "path", "") == "/v1/chat/completions")

    async def completions(request: Request):
        if not stamped["n"]:
            return await original.endpoint(request)
        gate = llm.default.gate
        while gate is not None and not gate.is_set():
            await asyncio.sleep(0.02)
        return StreamingResponse(_stamped(stamped["n"], stamped["delay"]), media_type="text/event-stream")

    llm.app.router.routes.insert(0, Route("/v1/chat/completions", completions, methods=["POST"]))

    @llm.app.post("/bench/reply")
    async def reply(request: Request) -> dict:
        body = await request.json()
        llm.default = Reply(text=body.get("text", "Done."), chunks=int(body.get("chunks", 3)),
                            chunk_delay=float(body.get("chunk_delay", 0.0)),
                            gate=threading.Event() if body.get("hold") else None)
        stamped.update(n=int(body.get("stamps", 0)), delay=float(body.get("chunk_delay", 0.0)))
        llm.requests.clear()
        llm.chunk_times.clear()
        return {"ok": True}

    @llm.app.post("/bench/release")
    async def release() -> dict:
        if llm.default.gate is not None:
            llm.default.gate.set()
        return {"ok": True}

    @llm.app.get("/bench/chunk_times")
    async def chunk_times() -> list[float]:
        times, llm.chunk_times[:] = list(llm.chunk_times), []
        llm.requests.clear()  # the record of every request would grow without bound under load
        return times

    return llm


async def _stamped(n: int, delay: float):
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()), "model": "bench"}

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return f"data: {json.dumps(dict(base, choices=[{'index': 0, 'delta': delta, 'finish_reason': finish}]))}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    for i in range(n):
        if delay:
            await asyncio.sleep(delay)
        yield chunk({"content": f"{i:06d}@{time.time():.6f};"})
    yield chunk({}, "stop")
    yield b"data: [DONE]\n\n"


if __name__ == "__main__":
    uvicorn.run(build().app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
