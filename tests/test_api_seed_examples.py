"""Seed 001's own examples, run against the server: the Python (requests) snippet as a
script, and the curl calls of its endpoint list, with the development key `dev-api-key`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from .api_servers import SERVER_LLM_KEY, wait_task
from .fakes.llm import Reply

SEED_PYTHON = '''
import requests

API_URL = "http://localhost:8000"
API_KEY = "your-api-key-here"

headers = {
    "X-API-Key": API_KEY,
    "Content-Type": "application/json"
}

# Execute a task
response = requests.post(
    f"{API_URL}/api/tasks/",
    headers=headers,
    json={
        "prompt": "Create a React component that displays a list of items",
        "context": {
            "project": "e-commerce-site",
            "language": "typescript"
        },
        "tools": ["code-generator", "documentation-search"]
    }
)
print(response.json())

# List models
response = requests.get(f"{API_URL}/ml-api/models/", headers=headers)
print(response.json())
'''


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory, fake_llm, fake_hub):
    from .harness import ServerProcess

    proc = ServerProcess(tmp_path_factory.mktemp("seed"), {
        "HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
        "MLAGENT_INFERENCE_API_KEY": SERVER_LLM_KEY}).start()
    yield proc
    proc.stop()


def test_seed_python_example(dev_server, fake_llm, tmp_path):
    assert "dev-api-key" in dev_server.log() and "NO API KEY CONFIGURED" in dev_server.log()
    fake_llm.push(Reply(text="export function ItemList() {}"))
    script = tmp_path / "example.py"
    script.write_text(SEED_PYTHON.replace("http://localhost:8000", dev_server.url)
                      .replace("your-api-key-here", "dev-api-key")
                      .replace("print(response.json())", "print(json.dumps(response.json()))")
                      .replace("import requests", "import json\nimport requests"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    task, models = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert task["status"] == "accepted" and task["message"] == "Task submitted for execution"
    assert models and {"id", "name", "version", "description", "parameters"} <= set(models[0])
    import httpx

    with httpx.Client(base_url=dev_server.url, headers={"X-API-Key": "dev-api-key"}) as c:
        done = wait_task(c, task["task_id"])
    assert (done["status"], done["result"]) == ("completed", "export function ItemList() {}")
    first = fake_llm.requests[-1]
    assert "project: e-commerce-site" in json.dumps(first.messages)


def curl(*args: str) -> tuple[int, dict | list]:
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
def test_seed_curl_calls(dev_server, fake_llm):
    url, key = dev_server.url, "X-API-Key: dev-api-key"
    assert curl(f"{url}/api/", "-H", key) == (200, {"status": "online", "version": "1.0.0",
                                                    "message": "Agent Runtime API is running"})
    assert curl(f"{url}/ninja-api/", "-H", key)[1]["pydantic_models_available"] is True
    assert curl(f"{url}/ml-api/", "-H", key)[1]["ml_client_available"] is True
    task = textwrap.dedent('''
        {"prompt": "Create a React component that displays a list of items",
         "context": {"project": "e-commerce-site", "language": "typescript"},
         "tools": ["code-generator", "documentation-search"]}''')
    for prefix in ("/api", "/ninja-api"):
        code, body = curl("-X", "POST", f"{url}{prefix}/tasks/", "-H", key, "-H", "Content-Type: application/json",
                          "-d", task)
        assert code == 200 and body["status"] == "accepted", body
    code, users = curl(f"{url}/api/users/", "-H", key)
    assert code == 200 and [u["username"] for u in users] == ["dev"]
    code, models = curl(f"{url}/ml-api/models/", "-H", key)
    assert code == 200 and models
    assert curl(f"{url}/ml-api/models/{models[0]['id']}/", "-H", key) == (200, models[0])
    assert curl(f"{url}/ml-api/fine-tuning-jobs/", "-H", key) == (200, [])
    code, err = curl(f"{url}/ml-api/fine-tuning-jobs/ft-123456/", "-H", key)
    assert code == 404 and set(err) == {"error", "details"}
    code, err = curl(f"{url}/api/tasks/", "-X", "POST", "-H", "Content-Type: application/json", "-d", task)
    assert code == 401 and set(err) == {"error", "details"}


def test_agent_api_key_replaces_dev_key_and_no_llm_key_refuses_tasks(make_server):
    """AGENT_API_KEY set: the development key stops working. No MLAGENT_INFERENCE_API_KEY:
    a task is refused with an error that names the variable to set."""
    import httpx

    server = make_server(agent_api_key="prod-secret").start()
    assert httpx.get(server.url + "/api/", headers={"X-API-Key": "dev-api-key"}).status_code == 401
    assert httpx.get(server.url + "/api/", headers={"X-API-Key": "prod-secret"}).status_code == 200
    assert "NO API KEY CONFIGURED" not in server.log()
    r = httpx.post(server.url + "/api/tasks/", headers={"X-API-Key": "prod-secret"}, json={"prompt": "x"})
    assert r.status_code == 503 and "MLAGENT_INFERENCE_API_KEY" in r.json()["error"]
    assert httpx.get(server.url + "/ml-api/", headers={"X-API-Key": "prod-secret"}).json()["ml_client_available"] \
        is False
