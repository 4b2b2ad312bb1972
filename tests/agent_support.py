"""Helpers for the agent-tool tests: a server wired to the fake hub's dataset viewer with
fast job polling and small sandbox limits, and a way to run one scripted turn."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from .fakes.llm import FakeLLM, Reply
from .harness import SSE, ServerProcess, collect_sse

# CPU seconds: a sandboxed training script's imports alone (pandas, sklearn, skops) take ~2 CPU-s,
# more on a loaded CI machine; 4 killed test_agent_mlmodels there. Tests of the CPU limit set their own.
SANDBOX_ENV = {"MLAGENT_SANDBOX_CPU_SECONDS": "30", "MLAGENT_SANDBOX_MEMORY_MB": "768",
               "MLAGENT_SANDBOX_MAX_PROCESSES": "64", "MLAGENT_SANDBOX_WALL_SECONDS": "20"}


def agent_env(fake_hub, fake_llm, **extra: str) -> dict[str, str]:
    return {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
            "MLAGENT_DATASET_VIEWER_URL": fake_hub.url + "/viewer", "MLAGENT_JOB_POLL_SECONDS": "0.05",
            **SANDBOX_ENV, **extra}


@pytest.fixture(scope="session")
def agent_server(tmp_path_factory, fake_llm, fake_hub):
    server = ServerProcess(tmp_path_factory.mktemp("agent"), agent_env(fake_hub, fake_llm)).start()
    yield server
    server.stop()


@dataclass
class Turn:
    events: list[SSE]
    response: dict[str, Any]

    def types(self) -> list[str]:
        return [e.event or e.json()["type"] for e in self.events]

    def of_type(self, name: str) -> list[dict[str, Any]]:
        return [e.json() for e in self.events if (e.event or e.json()["type"]) == name]

    @property
    def text(self) -> str:
        return "".join(p["text"] for item in self.response["output"] if item["type"] == "message"
                       for p in item["content"])

    def calls(self) -> list[tuple[str, dict[str, Any], str]]:
        """(tool name, arguments, output in output[]) for every tool run (`mcp_call` item), in order."""
        outputs = {i["call_id"]: i["output"] for i in self.response["output"] if i["type"] == "mcp_call"}
        return [(i["name"], json.loads(i["arguments"]), outputs.get(i["call_id"], ""))
                for i in self.response["output"] if i["type"] == "mcp_call"]

    def output_of(self, name: str) -> str:
        found = [out for n, _, out in self.calls() if n == name]
        assert found, f"no {name} call in {self.calls()}"
        return found[-1]

    def artifacts(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.response["artifacts"] if kind is None or a["type"] == kind]


def script(fake_llm: FakeLLM, *steps: list[tuple[str, dict[str, Any]]] | str) -> None:
    """Each step is a list of tool calls for one model reply, or the final text."""
    for step in steps:
        fake_llm.push(Reply(text=step) if isinstance(step, str) else Reply(tool_calls=list(step)))


def run_turn(server: ServerProcess, token: str, body: dict[str, Any] | str) -> Turn:
    body = {"input": body} if isinstance(body, str) else dict(body)
    body["stream"] = True
    body.pop("background", None)
    with server.client(token) as c:
        events = collect_sse(c, "POST", "/v1/responses", json=body)
        rid = events[0].json()["response"]["id"]
        response = c.get(f"/v1/responses/{rid}").json()
    return Turn(events, response)


def deferred(fake_llm: FakeLLM) -> Reply:
    """A reply held until `release` fills it in: for steps that depend on ids the run creates."""
    reply = Reply(gate=threading.Event())
    fake_llm.push(reply)
    return reply


def release(reply: Reply, tool_calls: list[tuple[str, dict[str, Any]]] | None = None, text: str = "") -> None:
    reply.tool_calls = list(tool_calls or [])
    reply.text = text
    assert reply.gate is not None
    reply.gate.set()


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")
