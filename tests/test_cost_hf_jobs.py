"""The real HF Jobs tools report what a job cost (docs/cost-and-usage.md): a launch is
charged its estimate (flavor × timeout) while it runs; once the job has ended, the tool that
sees it settles the charge at the flavor's price × the time the Hub says it ran; a launch
that failed costs nothing. Through the real server and the fake Hub."""

from __future__ import annotations

import math

import pytest

from .agent_support import deferred, release, script, wait_for
from .costs import MODEL, module_server, price_file
from .harness import wait_status

HOURLY = 1.5  # a10g-large, USD an hour
DONE = {"completed", "failed", "cancelled"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub):
    directory = tmp_path_factory.mktemp("hf-job-costs")
    prices = price_file(directory, {MODEL: (0.0, 0.0)}, jobs={"a10g-large": HOURLY})
    server = module_server(directory, fake_llm, fake_hub, mlagent_price_table=prices,
                           mlagent_job_poll_seconds="0.05").start()
    yield server
    server.stop()


def _cost(c, rid: str) -> dict:
    return (c.get(f"/v1/responses/{rid}").json().get("usage") or {}).get("cost") or {}


def test_an_ended_job_is_charged_for_the_time_it_ran_not_its_timeout(server, fake_hub, fake_llm):
    token = fake_hub.user_token("jobcost-ada")
    script(fake_llm, [("hf_job_launch", {"image": "python:3.12", "command": ["python", "train.py"],
                                         "flavor": "a10g-large", "timeout": "2h"})])
    held = deferred(fake_llm)  # the model reads the job id before it waits for the job
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "train", "background": True, "max_cost_usd": 10}).json()["id"]
        [job_id] = wait_for(lambda: fake_hub.jobs_of("jobcost-ada"))
        # While it runs, the launch counts at its estimate: 2 h at $1.50.
        assert wait_for(lambda: _cost(c, rid).get("jobs_usd")) == pytest.approx(2 * HOURLY)
        script(fake_llm, "Trained.")
        release(held, [("hf_job_wait", {"job_id": job_id, "timeout_seconds": 60})])
        done = wait_status(c, rid, DONE, timeout=60)
    assert done["status"] == "completed", done
    job = fake_hub.jobs[job_id]
    assert job["stage"] == "COMPLETED" and job["spec"]["labels"]["mlagent-session"] == done["session_id"][:60]
    ran = job["inspects"]  # the fake Hub's running time (durations.running_secs), in seconds
    expected = HOURLY * math.ceil(ran / 60) / 60  # billed per started minute
    cost = done["usage"]["cost"]
    assert cost["jobs_usd"] == pytest.approx(expected) and cost["jobs_usd"] < 2 * HOURLY
    assert cost["total_usd"] == pytest.approx(expected)


def test_a_launch_that_failed_costs_nothing(server, fake_hub, fake_llm):
    token = fake_hub.user_token("jobcost-bea")
    fake_hub.no_credits.add("jobcost-bea")  # the Hub answers 402: no job runs
    script(fake_llm, [("hf_job_launch", {"image": "python:3.12", "command": ["python", "train.py"],
                                         "flavor": "a10g-large", "timeout": "2h"})], "No credits.")
    with server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "train", "background": True, "max_cost_usd": 10}).json()["id"]
        done = wait_status(c, rid, DONE, timeout=60)
    assert done["status"] == "completed", done
    out = next(i["output"] for i in done["output"] if i["type"] == "mcp_call")
    assert out.startswith("Error") and "402" in out, out
    assert fake_hub.jobs_of("jobcost-bea") == []
    cost = done["usage"]["cost"]
    assert cost["jobs_usd"] == 0 and cost["total_usd"] == 0
