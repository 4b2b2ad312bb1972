"""A server with seed 001's surfaces configured: API keys for three accounts (one an
operator), the server-side LLM key, CORS for one origin, and gRPC on a free port."""

from __future__ import annotations

import time

import httpx

from .fakes.serve import free_port
from .harness import ServerProcess

SERVER_LLM_KEY = "server-side-llm-key"
KEYS_YAML = """
key-alice: alice
key-bob: bob
key-ops: {account: ops, operator: true}
"""


def start_api_server(data_dir, fake_llm, fake_hub, start_timeout: float = 90, **env: str) -> ServerProcess:
    keys = data_dir / "keys.yaml"
    keys.write_text(KEYS_YAML)
    values = {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url,
              "MLAGENT_LLM_MAX_RETRIES": "0", "MLAGENT_INFERENCE_API_KEY": SERVER_LLM_KEY,
              "MLAGENT_API_KEYS_FILE": str(keys), "MLAGENT_CORS_ORIGINS": "https://app.example.com",
              "MLAGENT_GRPC_PORT": str(free_port()), **env}
    server = ServerProcess(data_dir, values).start(start_timeout)
    server.grpc_target = f"127.0.0.1:{values['MLAGENT_GRPC_PORT']}"
    return server


def client(server: ServerProcess, key: str | None = "key-alice") -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key} if key else {}, timeout=30)


def wait_task(c: httpx.Client, task_id: str, prefix: str = "/api") -> dict:
    deadline = time.monotonic() + 20
    while True:
        r = c.get(f"{prefix}/tasks/{task_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)


def wait_job(c: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(f"/ml-api/fine-tuning-jobs/{job_id}/")
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)
