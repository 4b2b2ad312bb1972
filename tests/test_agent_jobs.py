"""HF Jobs end to end: launch in the caller's namespace, wait, logs, artifacts (job, trackio
dashboard, pushed model, collection), billing/permission errors as tool results, a turn
cancelled mid-wait leaving its job running and listed, and turn-end recovery of repos
pushed from inside a job."""

from __future__ import annotations

from .agent_support import deferred, release, run_turn, script, wait_for
from .harness import iter_sse, wait_status

IMDB_SCRIPT = """# /// script
# dependencies = ["transformers", "datasets", "evaluate"]
# ///
import os
print("fine-tuning distilbert-base-uncased on a small IMDb subset, pushing to", os.environ["HUB_MODEL_ID"])
"""


def test_seed_imdb_cpu_job_launch_wait_and_report(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("abidlabs")
    repo = "abidlabs/ml-intern-api-imdb-distilbert-20260613-020123"
    whoami_before = fake_hub.whoami_calls
    script(fake_llm,
           [("update_plan", {"steps": [{"step": "launch the job", "status": "in_progress"},
                                       {"step": "wait and report", "status": "pending"}]})],
           [("hf_job_launch", {"script": IMDB_SCRIPT, "flavor": "cpu-basic", "timeout": "30m",
                            "env": {"HUB_MODEL_ID": repo}, "push_to_hub": True, "output_repo": repo})])
    held = deferred(fake_llm)  # the model "reads" the job id from the tool result
    body = {"model": "moonshotai/Kimi-K2.6:novita", "background": True, "max_cost_usd": 15.0,
            "instructions": "Launch exactly one CPU-only HF Job using the provided script as inline Python source. "
                            "Use hardware=cpu-basic and timeout about 30 minutes. Set HUB_MODEL_ID to the requested "
                            "repo id. Wait for the job to finish, then report the model URL, job URL, and eval metrics.",
            "input": f"Run this exact CPU-only fine-tuning script as one HF Job and publish the artifact to {repo}."}
    with agent_server.client(token) as c:
        created = c.post("/v1/responses", json=body).json()
        [job_id] = wait_for(lambda: fake_hub.jobs_of("abidlabs"))
        script(fake_llm, [("hf_job_logs", {"job_id": job_id, "tail": 2})],
               f"Model: {fake_hub.url}/{repo}\nJob: {fake_hub.url}/jobs/abidlabs/{job_id}\neval_accuracy 0.874")
        release(held, [("hf_job_wait", {"job_id": job_id, "timeout_seconds": 600})])
        done = wait_status(c, created["id"], {"completed", "failed", "cancelled"}, timeout=60)
        events = [e for e in c.get(f"/v1/responses/{created['id']}/events").text.split("\n") if e.startswith("event:")]
    assert done["status"] == "completed", done
    job = fake_hub.jobs[job_id]
    spec = job["spec"]
    assert spec["flavor"] == "cpu-basic" and spec["timeoutSeconds"] == 1800
    assert spec["environment"]["HUB_MODEL_ID"] == repo
    assert spec["secrets"]["HF_TOKEN"] == token  # the caller's token, for the push
    assert spec["environment"]["TRACKIO_SPACE_ID"] == "abidlabs/trackio"
    assert "uv run" in spec["command"][-1]
    outputs = {i["call_id"]: i["output"] for i in done["output"] if i["type"] == "mcp_call"}
    calls = [(i["name"], outputs[i["call_id"]]) for i in done["output"] if i["type"] == "mcp_call"]
    run_out = dict(calls)["hf_job_launch"]
    assert f"{fake_hub.url}/jobs/abidlabs/{job_id}" in run_out and "namespace abidlabs" in run_out
    wait_out = dict(calls)["hf_job_wait"]
    assert "COMPLETED" in wait_out and "eval_accuracy': 0.874" in wait_out and f"output model: {fake_hub.url}/{repo}" in wait_out
    assert "Pushed model" in dict(calls)["hf_job_logs"]
    kinds = {a["type"]: a for a in done["artifacts"]}
    assert kinds["hf_job"] == {"type": "hf_job", "id": job_id, "url": f"{fake_hub.url}/jobs/abidlabs/{job_id}"}
    assert kinds["trackio_dashboard"]["space_id"] == "abidlabs/trackio"
    assert kinds["trackio_dashboard"]["url"] == f"{fake_hub.url}/spaces/abidlabs/trackio"
    assert kinds["trackio_dashboard"]["project"]
    assert kinds["model"] == {"type": "model", "repo_id": repo, "url": f"{fake_hub.url}/{repo}"}
    assert kinds["collection"]["slug"].startswith("abidlabs/")
    assert "event: response.artifact.created" in events and "event: response.plan" in events
    assert "event: response.job_status" in events
    assert "eval_accuracy 0.874" in done["output"][-1]["content"][0]["text"]
    # Namespace looked up once for the session (plus the server's own token validation).
    assert fake_hub.whoami_calls - whoami_before <= 2


def test_billing_error_is_a_tool_result(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("broke")
    fake_hub.no_credits.add("broke")
    script(fake_llm, [("hf_job_launch", {"image": "python:3.12", "command": ["python", "-c", "print(1)"],
                                      "flavor": "a10g-small", "timeout": "1h"})],
           "Your account has no credits for this job.")
    turn = run_turn(agent_server, token, "train on a GPU")
    assert turn.response["status"] == "completed"
    out = turn.output_of("hf_job_launch")
    assert out.startswith("Error: Billing error (HTTP 402)") and "settings/billing" in out
    assert turn.artifacts("hf_job") == []


def test_cancelling_a_turn_leaves_the_launched_job_running(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("canceller")
    fake_hub.job_inspects_to_finish = 10**9
    try:
        script(fake_llm, [("hf_job_launch", {"image": "python:3.12", "command": ["sleep", "1000"]})])
        held = deferred(fake_llm)
        with agent_server.client(token) as c:
            rid = c.post("/v1/responses", json={"input": "run a long job", "background": True}).json()["id"]
            [job_id] = wait_for(lambda: fake_hub.jobs_of("canceller"))
            release(held, [("hf_job_wait", {"job_id": job_id})])
            # The wait reports progress live, while the turn is still running.
            with c.stream("GET", f"/v1/responses/{rid}/events") as stream:
                for event in iter_sse(stream):
                    if event.event == "response.job_status":
                        assert event.json()["stage"] == "RUNNING" and event.json()["job_id"] == job_id
                        break
            assert c.get(f"/v1/responses/{rid}").json()["status"] == "in_progress"
            # Cancel once the wait is under way (the hub sees it inspecting the job).
            wait_for(lambda: fake_hub.jobs[job_id]["inspects"] >= 2)
            assert c.post(f"/v1/responses/{rid}/cancel").status_code == 200
            done = wait_status(c, rid, {"cancelled", "completed", "failed"})
    finally:
        fake_hub.job_inspects_to_finish = 2
    assert done["status"] == "cancelled"
    assert fake_hub.jobs[job_id]["stage"] == "RUNNING"
    assert f"jobs:cancel:{job_id}" not in fake_hub.calls
    assert [a["id"] for a in done["artifacts"] if a["type"] == "hf_job"] == [job_id]


def test_repo_pushed_inside_a_job_is_recovered_from_the_collection(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("recoverer")
    fake_hub.job_inspects_to_finish = 1
    try:
        script(fake_llm, [("hf_job_launch", {"image": "python:3.12", "command": ["python", "train.py"],
                                          "env": {"HUB_MODEL_ID": "recoverer/pushed-in-job"}, "push_to_hub": True})])
        held = deferred(fake_llm)
        with agent_server.client(token) as c:
            rid = c.post("/v1/responses", json={"input": "train", "background": True}).json()["id"]
            [job_id] = wait_for(lambda: fake_hub.jobs_of("recoverer"))
            script(fake_llm, "Launched; it finished.")
            release(held, [("hf_job_inspect", {"job_id": job_id})])
            done = wait_status(c, rid, {"completed", "failed", "cancelled"})
    finally:
        fake_hub.job_inspects_to_finish = 2
    assert done["status"] == "completed", done
    # Neither tool announced the model: only the turn-end read of the session collection did.
    assert {"type": "model", "repo_id": "recoverer/pushed-in-job",
            "url": f"{fake_hub.url}/recoverer/pushed-in-job"} in done["artifacts"]


def test_job_cancel_tool_cancels(agent_server, fake_hub, fake_llm):
    token = fake_hub.user_token("stopper")
    fake_hub.job_inspects_to_finish = 10**9
    try:
        script(fake_llm, [("hf_job_launch", {"image": "python:3.12", "command": ["sleep", "1000"]})])
        held = deferred(fake_llm)
        with agent_server.client(token) as c:
            rid = c.post("/v1/responses", json={"input": "start then stop", "background": True}).json()["id"]
            [job_id] = wait_for(lambda: fake_hub.jobs_of("stopper"))
            script(fake_llm, "Stopped.")
            release(held, [("hf_job_cancel", {"job_id": job_id})])
            done = wait_status(c, rid, {"completed", "failed", "cancelled"})
    finally:
        fake_hub.job_inspects_to_finish = 2
    assert done["status"] == "completed"
    assert fake_hub.jobs[job_id]["stage"] == "CANCELED"
    out = [i["output"] for i in done["output"] if i["type"] == "mcp_call"][-1]
    assert "Cancellation requested" in out and "CANCELED" in out


def test_a_job_whose_estimate_exceeds_the_cap_pauses_before_it_launches(agent_server, fake_hub, fake_llm):
    """The real HF Jobs tool under cost control: 8×H200 for 2 h is estimated at $80, over a
    $5 cap, so the turn pauses with the job pending and nothing is launched."""
    token = fake_hub.user_token("spender")
    script(fake_llm, [("hf_job_launch", {"script": "print(1)", "flavor": "h200x8", "timeout": "2h"})])
    with agent_server.client(token) as c:
        rid = c.post("/v1/responses", json={"input": "train big", "background": True, "max_cost_usd": 5}).json()["id"]
        body = wait_status(c, rid, {"incomplete", "completed", "failed"})
        events = [e for e in c.get(f"/v1/responses/{rid}/events").text.split("\n") if e.startswith("data:")]
    assert body["status"] == "incomplete", body
    assert body["incomplete_details"] == {"reason": "approval_required"}
    assert fake_hub.jobs_of("spender") == []
    approval = next(line for line in events if '"response.approval_required"' in line)
    assert '"hf_job_launch"' in approval and '"kind":"job"' in approval.replace(" ", "")
