"""The tests' fake LLM (tests/fakes/llm.py) served from its own process, for benchmarks:
`python -m bench.fake_llm PORT`. It answers OpenAI chat completions at once (streamed, as
the tests script it). The same process serves the fake Hub's routes (tests/fakes/hub.py),
which knows one token, `HF_TOKEN` below, for the user `bench` (mlagent caches whoami).
Two control routes let a benchmark script the LLM from outside:

- `POST /bench/reply` `{"text", "chunks", "chunk_delay", "hold"}` sets the default answer
  (`hold`: every answer waits until `POST /bench/release`);
- `GET /bench/chunk_times` returns (and clears) the wall-clock send time of every text chunk.
"""

from __future__ import annotations

import sys
import threading

import uvicorn
from fastapi import Request

from tests.fakes.hub import FakeHub
from tests.fakes.llm import FakeLLM, Reply

HF_TOKEN = "hf_bench0000000000000000"


def build() -> FakeLLM:
    llm = FakeLLM()
    hub = FakeHub()
    hub.tokens[HF_TOKEN] = hub.tokens.pop(hub.user_token("bench"))
    llm.app.router.routes.extend(hub.app.router.routes)

    @llm.app.post("/bench/reply")
    async def reply(request: Request) -> dict:
        body = await request.json()
        llm.default = Reply(text=body.get("text", "Done."), chunks=int(body.get("chunks", 3)),
                            chunk_delay=float(body.get("chunk_delay", 0.0)),
                            gate=threading.Event() if body.get("hold") else None)
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


if __name__ == "__main__":
    uvicorn.run(build().app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
