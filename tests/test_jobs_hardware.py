"""HF Jobs flavors come from the Hub's catalogue (GET /api/jobs/hardware), cached, with the
built-in table only as the offline fallback: the job tool, fine-tuning flavors, the price
table and the estimates all use it (issue 13, item 2)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import httpx
import pytest

from .agent_support import agent_env, script
from .harness import ServerProcess, wait_status

TRAIN = "".join(json.dumps({"prompt": f"{i}+{i}=", "completion": f" {2 * i}"}) + "\n" for i in range(10))
HUB_ONLY = "b300x1"  # a flavor no built-in table knows


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    row = {**fake_hub.hardware[0], "name": HUB_ONLY, "prettyName": "1x Nvidia B300", "unitCostMicroUSD": 116667,
           "unitCostUSD": 0.116667, "unitLabel": "minute"}  # $7.00 an hour
    fake_hub.hardware.append(row)
    proc = ServerProcess(tmp_path_factory.mktemp("hardware"), agent_env(fake_hub, fake_llm)).start()
    yield proc
    proc.stop()
    fake_hub.hardware.remove(row)


def create(c: httpx.Client, flavor: str) -> httpx.Response:
    file_id = c.post("/ml-api/files/", files={"file": ("t.jsonl", TRAIN.encode())}).json()["id"]
    return c.post("/ml-api/fine-tuning-jobs/", json={"model_id": "Qwen/Qwen3-0.6B", "training_file": file_id,
                                                     "compute_config": {"instance_type": flavor}})


def test_a_flavor_only_in_the_hub_catalogue_is_accepted_and_priced_from_it(server, fake_hub):
    with server.client(fake_hub.user_token(f"hw-{secrets.token_hex(3)}")) as c:
        r = create(c, HUB_ONLY)
    assert r.status_code == 200, r.text
    assert r.json()["estimated_cost_usd"] == 7.0  # $7.00/h × the 3600 s default timeout
    assert r.json()["hub"]["flavor"] == HUB_ONLY


@pytest.mark.parametrize("flavor", ["h100", "a100x8", "g4dn.xlarge"])
def test_an_unknown_flavor_is_refused_listing_the_valid_ones(server, fake_hub, flavor):
    """h100 is not an HF Jobs flavor; a100x8 is in the built-in table but not in this Hub's catalogue."""
    with server.client(fake_hub.user_token(f"hw-{secrets.token_hex(3)}")) as c:
        r = create(c, flavor)
    assert r.status_code == 400, r.text
    assert r.json()["details"]["field"] == "compute_config.instance_type"
    assert HUB_ONLY in r.json()["error"] and "h200x2" in r.json()["error"] and "rtx-pro-6000" in r.json()["error"]


def test_the_job_tool_offers_and_prices_the_catalogue(server, fake_hub, fake_llm):
    ns = f"hw-{secrets.token_hex(3)}"
    script(fake_llm, [("hf_job_launch", {"script": "print(1)", "flavor": HUB_ONLY, "timeout": "1h"})])
    with server.client(fake_hub.user_token(ns)) as c:
        rid = c.post("/v1/responses", json={"input": "train", "background": True, "max_cost_usd": 5}).json()["id"]
        body = wait_status(c, rid, {"incomplete", "completed", "failed"})
    assert body["status"] == "incomplete", body  # $7 for an hour on b300x1 is over the $5 cap
    [action] = body["pending_approval"]["actions"]
    assert action["name"] == "hf_job_launch" and action["estimate_usd"] == 7.0 and action["priced"]
    spec = next(t for t in fake_llm.requests[0].body["tools"] if t["function"]["name"] == "hf_job_launch")
    flavors = spec["function"]["parameters"]["properties"]["flavor"]["enum"]
    assert HUB_ONLY in flavors and "h200x8" in flavors and "h100" not in flavors and "a100x8" not in flavors
    assert fake_hub.jobs_of(ns) == []


def test_the_catalogue_is_fetched_once_the_server_listens_without_a_request_needing_it(tmp_path, fake_hub, fake_llm):
    """Start-up does not wait for the Hub (the fetch starts after listening: server.listening),
    but nor does the catalogue wait for a job tool or fine-tuning job to ask for it."""
    before = fake_hub.calls.count("jobs:hardware")
    proc = ServerProcess(tmp_path, agent_env(fake_hub, fake_llm)).start()  # asks only GET /api/config/model
    try:
        deadline = time.monotonic() + 60  # a bound on the wait, not a timing assertion
        while fake_hub.calls.count("jobs:hardware") == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake_hub.calls.count("jobs:hardware") > before, proc.log()[-2000:]
    finally:
        proc.stop()


def test_offline_the_built_in_table_is_the_fallback():
    from mlagent.usage.hardware import JobHardware
    from mlagent.usage.prices import load_prices

    prices = load_prices(None)
    hardware = JobHardware("http://127.0.0.1:9", prices)  # nothing listens there
    names = asyncio.run(hardware.refresh())
    assert hardware.source == "builtin"
    assert {"h200", "h200x2", "h200x4", "h200x8", "rtx-pro-6000", "rtx-pro-6000x8"} <= set(names)
    assert "h100" not in names and "h100x8" not in names
    assert hardware.hourly("h200x8") == 40.0
