"""A scripted OpenAI-compatible chat-completions server (streaming, tool calls, usage).

Tests push `Reply` objects; each request takes the next one (or the default). Every
request is recorded with the bearer token it carried.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from .serve import BackgroundServer


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chunks: int = 3
    chunk_delay: float = 0.0
    status: int | None = None  # answer with this HTTP error instead
    gate: threading.Event | None = None  # hold the reply until the test sets it
    input_tokens: int = 11
    output_tokens: int = 7
    reasoning: str = ""  # streamed first, as `reasoning_content` deltas (vLLM / DeepSeek style)
    stream_error: str | None = None  # after the text, an `{"error": ...}` event ends the stream


@dataclass
class Recorded:
    token: str
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body["messages"]


class FakeLLM:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(text="Done.")
        self.requests: list[Recorded] = []
        self.chunk_times: list[float] = []  # wall-clock send time of every text chunk (benchmarks)
        self.app = self._build()
        self._server = BackgroundServer(self.app)

    @property
    def url(self) -> str:
        return self._server.url + "/v1"

    def start(self) -> FakeLLM:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()
        self.default = Reply(text="Done.")

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request):
            body = await request.json()
            token = request.headers.get("authorization", "")[7:]
            self.requests.append(Recorded(token=token, body=body))
            reply = self.replies.popleft() if self.replies else self.default
            if reply.gate is not None:
                while not reply.gate.is_set():
                    await asyncio.sleep(0.02)
            if reply.status is not None:
                return JSONResponse({"error": {"message": "scripted failure", "type": "error"}},
                                    status_code=reply.status)
            return StreamingResponse(_stream(body, reply, self.chunk_times), media_type="text/event-stream")

        return app


async def _stream(body: dict[str, Any], reply: Reply, chunk_times: list[float]):
    cid = f"chatcmpl-{uuid.uuid4().hex[:8]}"
    base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": body["model"]}

    def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict | None = None) -> bytes:
        data = dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": finish}])
        if usage is not None:
            data = dict(base, choices=[], usage=usage)
        return f"data: {json.dumps(data)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    for i in range(0, len(reply.reasoning), 8):
        yield chunk({"reasoning_content": reply.reasoning[i:i + 8]})
    text = reply.text
    if text:
        n = max(1, min(reply.chunks, len(text)))
        size = -(-len(text) // n)
        for i in range(0, len(text), size):
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            chunk_times.append(time.time())
            yield chunk({"content": text[i:i + size]})
    if reply.stream_error is not None:
        yield f"data: {json.dumps({'error': {'message': reply.stream_error, 'type': 'server_error'}})}\n\n".encode()
        return
    for index, (name, args) in enumerate(reply.tool_calls):
        call_id = f"call_{uuid.uuid4().hex[:8]}"
        raw = json.dumps(args)
        half = len(raw) // 2
        yield chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                     "function": {"name": name, "arguments": raw[:half]}}]})
        yield chunk({"tool_calls": [{"index": index, "function": {"arguments": raw[half:]}}]})
    yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield chunk({}, usage={"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                               "total_tokens": reply.input_tokens + reply.output_tokens})
    yield b"data: [DONE]\n\n"
