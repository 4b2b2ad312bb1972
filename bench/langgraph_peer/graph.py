"""The agent-run baseline: a one-node LangGraph graph that calls the benchmark's fake LLM
once (OpenAI chat completions, streamed, over HTTP) and returns its answer, so that a run
on `langgraph dev` and an mlagent turn each make exactly one LLM call (bench/agent_run.py).

It uses one shared httpx client, as a chat-model client would; BENCH_LLM_URL is the fake
LLM's `/v1` base URL."""

from __future__ import annotations

import json
import os
from typing import TypedDict

import httpx
from langgraph.graph import END, START, StateGraph

LLM_URL = os.environ.get("BENCH_LLM_URL", "http://127.0.0.1:9/v1")
_client = httpx.AsyncClient(timeout=60, headers={"Authorization": "Bearer bench-llm-key"})


class State(TypedDict, total=False):
    input: str
    answer: str


async def call_llm(state: State) -> State:
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": state.get("input", "")}]}
    text: list[str] = []
    async with _client.stream("POST", f"{LLM_URL}/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:])["choices"]:
                    text.append(choice["delta"].get("content") or "")
    return {"answer": "".join(text)}


graph = StateGraph(State).add_node("call_llm", call_llm).add_edge(START, "call_llm").add_edge("call_llm", END).compile()
