"""Helpers for the cost and usage tests: price tables, event reading, the job-tool server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

from .harness import SSE, ServerProcess, collect_sse

MODEL = "moonshotai/Kimi-K2.6:novita"


def price_file(directory: Path, models: dict[str, tuple[float, float]] | None = None,
               jobs: dict[str, float] | None = None, output_tokens: int | None = None,
               sandbox_hourly: float | None = None) -> str:
    """Write a price table (USD per million tokens in/out; job flavors and the sandbox per hour)."""
    data: dict[str, Any] = {}
    if sandbox_hourly is not None:
        data["sandbox"] = {"hourly_usd": sandbox_hourly}
    if models:
        data["models"] = {m: {"input_per_mtok": i, "output_per_mtok": o} for m, (i, o) in models.items()}
    if jobs:
        data["jobs"] = jobs
    if output_tokens is not None:
        data["estimate"] = {"output_tokens": output_tokens}
    path = directory / "prices.json"
    path.write_text(json.dumps(data))
    return str(path)


def with_job_tool(server: ServerProcess) -> ServerProcess:
    server.argv = [sys.executable, "-m", "tests.job_tool_server"]
    return server


def launches(server: ServerProcess, response_id: str) -> list[dict[str, Any]]:
    """The jobs the test-only `launch_job` tool launched for `response_id`."""
    path = server.data_dir / "launches.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in rows if r["response_id"] == response_id]


def module_server(directory: Path, fake_llm, fake_hub, **env: str) -> ServerProcess:
    """A server shared by a module's tests (the fakes are reset between tests)."""
    values = {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
              **{k.upper(): v for k, v in env.items()}}
    return ServerProcess(directory, values)


def events(client: httpx.Client, rid: str, after: int = -1) -> list[SSE]:
    return collect_sse(client, "GET", f"/v1/responses/{rid}/events", params={"starting_after": after})


def llm_calls(client: httpx.Client, rid: str) -> list[dict[str, Any]]:
    return [e.json() for e in events(client, rid) if e.event == "response.llm_call"]
