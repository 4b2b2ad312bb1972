"""Operability (issue 17): /healthz, /readyz, /metrics, JSON log lines of a turn's life,
X-Request-ID, traces over OTLP, and start-up on ports (the real one; a taken gRPC port)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import PG_SKIP, PG_URL
from .costs import MODEL, module_server, price_file
from .fakes.llm import Reply
from .fakes.otlp import FakeOtlp
from .fakes.serve import free_port
from .harness import drop_pg_database, wait_status

DONE = {"completed", "failed", "cancelled", "incomplete"}
SERVER_LLM_KEY = "sk-server-llm-key-never-logged"
START_TIMEOUT = 120  # a loaded 2-core machine takes ~30 s to import the server


def scrape(client: httpx.Client, **kw) -> dict[tuple[str, frozenset], float]:
    r = client.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def json_lines(server) -> list[dict]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def turn_lines(server, rid: str) -> list[dict]:
    return [r for r in json_lines(server) if r.get("response_id") == rid and r.get("logger") == "mlagent.turns"]


def wait_lines(server, rid: str, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        lines = turn_lines(server, rid)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.fixture(scope="module")
def json_server(tmp_path_factory, fake_llm, fake_hub):
    """JSON logs, gRPC on, and prices that make a fake call cost $0.025 but estimate a call at
    over $5 (2,500 assumed answer tokens alone are $5.00, plus the prompt; under $10 with all the
    tools): the default $5 cap (a task's) pauses the first call, a $10 cap does not."""
    directory = tmp_path_factory.mktemp("ops")
    prices = price_file(directory, {MODEL: (1000.0, 2000.0)}, output_tokens=2500)
    server = module_server(directory, fake_llm, fake_hub, mlagent_log_format="json", mlagent_price_table=prices,
                           mlagent_grpc_port=str(free_port()),
                           mlagent_inference_api_key=SERVER_LLM_KEY).start(timeout=START_TIMEOUT)
    yield server
    server.stop()


def test_healthz_readyz_and_request_ids(json_server):
    with httpx.Client(base_url=json_server.url) as c:
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert len(health.headers["x-request-id"]) == 32  # generated
        ready = c.get("/readyz", headers={"X-Request-ID": "lb-probe-1"})
        assert ready.headers["x-request-id"] == "lb-probe-1"  # taken from the request
        body = ready.json()
        assert ready.status_code == 200 and body["status"] == "ready" and body["failed"] == [], body
        assert set(body["checks"]) == {"database", "migrations", "grpc"}  # SQLite: no PG listener
        assert body["checks"]["migrations"]["current"] == body["checks"]["migrations"]["head"]
        assert body["checks"]["grpc"]["port"] > 0
        # A request id that is not short and plain is replaced, never copied into the logs.
        odd = c.get("/healthz", headers={"X-Request-ID": "x" * 300})
        assert odd.headers["x-request-id"] != "x" * 300


def test_readyz_fails_while_migrations_are_not_at_head(json_server):
    import sqlite3

    db = sqlite3.connect(json_server.data_dir / "mlagent.db")
    (head,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    with httpx.Client(base_url=json_server.url) as c:
        try:
            db.execute("UPDATE alembic_version SET version_num = '0005_paused_agents'")
            db.commit()
            r = c.get("/readyz")
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["status"] == "not_ready" and body["failed"] == ["migrations"]
            assert "mlagent migrate" in body["checks"]["migrations"]["error"]
        finally:
            db.execute("UPDATE alembic_version SET version_num = ?", (head,))
            db.commit()
            db.close()
        assert c.get("/readyz").status_code == 200


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP)
def test_readyz_fails_while_the_postgresql_database_is_gone(make_server):
    server = make_server(database="postgresql").start(timeout=START_TIMEOUT)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready", ready
        assert set(ready["checks"]) == {"database", "migrations", "pg_listener"}, ready  # gRPC is off here
        drop_pg_database(PG_URL, server.env["MLAGENT_DATABASE_URL"])  # WITH (FORCE): its connections die
        r = c.get("/readyz")
        assert r.status_code == 503, r.text
        body = r.json()
        assert "database" in body["failed"] and "migrations" in body["failed"]
        assert "database unreachable" in body["checks"]["database"]["error"]
        assert c.get("/healthz").status_code == 200  # the process itself still answers


def test_metrics_and_json_log_lines_of_a_turn_with_tool_calls(json_server, fake_hub, fake_llm):
    token = fake_hub.user_token("mia")
    with json_server.client(token) as c:
        before = scrape(c)
        fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "look", "status": "in_progress"}]}),
                                        ("no_such_tool_xyz", {"q": "free text must not become a label"})]),
                      Reply(text="All done."))
        r = c.post("/v1/responses", json={"input": "plan it", "max_cost_usd": 10},
                   headers={"X-Request-ID": "req-turn-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-turn-1"
        rid = r.json()["id"]
        assert wait_status(c, rid, DONE)["status"] == "completed"
        after = scrape(c)

    assert delta(before, after, "mlagent_turns_total", status="completed", surface="v1") == 1
    assert delta(before, after, "mlagent_turns_started_total", surface="v1", kind="start") == 1
    assert delta(before, after, "mlagent_turn_duration_seconds_count", status="completed") == 1
    assert delta(before, after, "mlagent_turn_queue_wait_seconds_count") == 1
    assert delta(before, after, "mlagent_llm_calls_total", model=MODEL) == 2
    assert delta(before, after, "mlagent_llm_tokens_total", model=MODEL, direction="input") == 22
    assert delta(before, after, "mlagent_llm_tokens_total", model=MODEL, direction="output") == 14
    assert delta(before, after, "mlagent_llm_cost_usd_total", model=MODEL) == pytest.approx(0.05)
    assert delta(before, after, "mlagent_llm_call_duration_seconds_count", model=MODEL) == 2
    assert delta(before, after, "mlagent_tool_calls_total", tool="update_plan", outcome="ok") == 1
    assert delta(before, after, "mlagent_tool_calls_total", tool="other", outcome="error") == 1
    assert delta(before, after, "mlagent_tool_call_duration_seconds_count", tool="update_plan") == 1
    assert delta(before, after, "mlagent_events_appended_total", type="response.completed") == 1
    assert delta(before, after, "mlagent_events_appended_total", type="response.llm_call") == 2
    assert value(after, "mlagent_turns_running") == 0
    assert value(after, "mlagent_live_sessions") >= 1
    labels = {v for (_name, ls) in after for _k, v in ls}
    assert not any("free text" in v or "no_such_tool" in v or v.startswith("hf_") for v in labels)

    lines = wait_lines(json_server, rid, 2)
    start, end = lines[0], lines[-1]
    assert [line["event"] for line in lines] == ["turn.start", "turn.end"], lines
    assert start["request_id"] == end["request_id"] == "req-turn-1"
    assert start["account"] == end["account"] == "mia"
    assert start["session_id"] == end["session_id"] and start["session_id"].startswith("sess_")
    assert start["model"] == MODEL and start["surface"] == "v1" and start["queue_wait_s"] >= 0
    assert end["status"] == "completed" and end["duration_s"] > 0
    assert end["llm_cost_usd"] == pytest.approx(0.05) and end["session_cost_usd"] == pytest.approx(0.05)
    assert end["input_tokens"] == 22 and end["output_tokens"] == 14
    # The create request's own access line carries the same id.
    assert any(line.get("request_id") == "req-turn-1" and line["logger"] == "uvicorn.access" for line in json_lines(json_server))
    assert token not in json_server.log()


def test_json_log_lines_for_pause_resume_and_cancel_and_no_token(json_server, fake_hub, fake_llm):
    token = fake_hub.user_token("noa")
    with json_server.client(token) as c:
        before = scrape(c)
        fake_llm.push(Reply(text="The answer."))
        rid = c.post("/v1/responses", json={"input": "hi", "background": True, "max_cost_usd": 1.0}).json()["id"]
        assert wait_status(c, rid, DONE)["status"] == "incomplete"
        time.sleep(2.1)  # the database-backed gauges are re-read at most every 2 s
        middle = scrape(c)
        assert value(middle, "mlagent_approvals_pending") >= 1
        approved = c.post(f"/v1/responses/{rid}/approvals", json={"approve": True, "new_max_cost_usd": 10})
        assert approved.status_code == 200, approved.text
        assert wait_status(c, rid, {"completed", "failed", "cancelled"})["status"] == "completed"

        import threading
        gate = threading.Event()
        fake_llm.push(Reply(text="slow", gate=gate))
        other = c.post("/v1/responses", json={"input": "slow one", "background": True, "max_cost_usd": 10}).json()["id"]
        wait_status(c, other, {"in_progress"})
        with c.stream("GET", f"/v1/responses/{other}/events") as stream:
            lines = stream.iter_lines()
            next(lines)  # the stream is open
            assert value(scrape(c), "mlagent_sse_clients") == 1
            assert c.post(f"/v1/responses/{other}/cancel").status_code == 200
            gate.set()
            assert any("response.cancelled" in line for line in lines)
        assert wait_status(c, other, {"cancelled", "completed"})["status"] == "cancelled"
        time.sleep(2.1)
        after = scrape(c)

    events = [line["event"] for line in wait_lines(json_server, rid, 4)]
    assert events == ["turn.start", "turn.pause", "turn.resume", "turn.end"], events
    pause = turn_lines(json_server, rid)[1]
    assert pause["reason"] == "approval_required" and pause["account"] == "noa" and pause["duration_s"] >= 0
    assert [line["event"] for line in wait_lines(json_server, other, 2)] == ["turn.start", "turn.cancel"]
    assert delta(before, after, "mlagent_turns_total", status="paused", surface="v1") == 1
    assert delta(before, after, "mlagent_turns_started_total", surface="v1", kind="resume") == 1
    assert delta(before, after, "mlagent_turns_total", status="cancelled", surface="v1") == 1
    assert value(after, "mlagent_approvals_pending") == 0
    assert value(after, "mlagent_sse_clients") == 0
    assert token not in json_server.log()
    for line in json_server.log().splitlines():  # every line is one JSON object
        assert line.startswith("{"), line
        json.loads(line)


def test_metrics_bearer_protection(make_server):
    server = make_server(mlagent_metrics_token="scrape-secret").start(timeout=START_TIMEOUT)
    with httpx.Client(base_url=server.url) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert "mlagent_turns_total" in c.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).text
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
    assert "scrape-secret" not in server.log()


def test_traces_exported_over_otlp_with_genai_attributes(make_server, fake_hub, fake_llm):
    receiver = FakeOtlp().start()
    try:
        server = make_server(otel_exporter_otlp_endpoint=receiver.url, otel_bsp_schedule_delay="100",
                             otel_service_name="mlagent-test").start(timeout=START_TIMEOUT)
        fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "a", "status": "pending"}]})]),
                      Reply(text="ok"))
        with server.client(fake_hub.user_token("tess")) as c:
            rid = c.post("/v1/responses", json={"input": "trace me"}).json()["id"]
        spans = receiver.wait_for(lambda s: sum(x.name.startswith("invoke_agent") for x in s) >= 1)
    finally:
        receiver.stop()
    (turn,) = [s for s in spans if s.name == "invoke_agent ml-agent"]
    assert turn.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert turn.attributes["gen_ai.response.id"] == rid and turn.attributes["gen_ai.request.model"] == MODEL
    assert turn.resource["service.name"] == "mlagent-test"
    chats = [s for s in spans if s.name == f"chat {MODEL}"]
    assert len(chats) == 2
    assert all(s.parent_span_id == turn.span_id and s.trace_id == turn.trace_id for s in chats)
    assert chats[0].attributes["gen_ai.usage.input_tokens"] == 11
    assert chats[0].attributes["gen_ai.usage.output_tokens"] == 7
    assert chats[0].attributes["gen_ai.operation.name"] == "chat"
    (tool,) = [s for s in spans if s.name == "execute_tool update_plan"]
    assert tool.parent_span_id == turn.span_id and tool.attributes["gen_ai.tool.name"] == "update_plan"
    assert tool.attributes["gen_ai.tool.call.id"].startswith("call_")
    assert turn.start_ns <= tool.start_ns <= tool.end_ns <= turn.end_ns


def test_without_otel_endpoint_the_sdk_is_not_even_imported():
    code = ("import sys; from mlagent.server import create_app; from mlagent.observability import tracing; "
            "assert tracing.setup() is False; "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _wait_exit_or_line(proc, path, needle: str, timeout: float = START_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text or proc.poll() is not None:
            return text
        time.sleep(0.05)
    return path.read_text(errors="replace")


def test_ready_line_has_the_real_ports_and_taken_ports_fail_fast(make_server, tmp_path):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    grpc_port = free_port()
    first = make_server(mlagent_port="0", mlagent_grpc_port=str(grpc_port))  # HTTP port 0: the OS picks one
    log = tmp_path / "first.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(first.argv, env=first.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        text = _wait_exit_or_line(proc, log, "mlagent ready")
        (ready,) = [line for line in text.splitlines() if "mlagent ready" in line]
        http_port = int(ready.split("http://127.0.0.1:")[1].split(",")[0])
        assert http_port > 0 and ready.endswith(f"gRPC on 127.0.0.1:{grpc_port}"), ready
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as c:
            checks = c.get("/readyz").json()["checks"]
            assert checks["grpc"] == {"ok": True, "port": grpc_port}
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING

        # A second server on the same gRPC port stops at once, saying why (no silent sharing).
        second = make_server(mlagent_grpc_port=str(grpc_port))
        failed = subprocess.run(second.argv, env=second.env, check=False, capture_output=True, text=True, timeout=120)
        assert failed.returncode == 2, failed.stderr
        assert f"cannot start: the gRPC port 127.0.0.1:{grpc_port} is already in use" in failed.stderr
        assert "Traceback" not in failed.stderr and "mlagent ready" not in failed.stderr
        assert "Application startup" not in failed.stderr  # it stopped before starting anything

        # And one on the same HTTP port.
        third = make_server(mlagent_port=str(http_port), mlagent_grpc_port=str(free_port()))
        done = subprocess.run(third.argv, env=third.env, check=False, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert f"cannot start: the HTTP port 127.0.0.1:{http_port} is not available" in done.stderr
    finally:
        proc.terminate()
        proc.wait(15)


def test_metrics_after_a_training_job_and_predictions(json_server):
    import pickle

    import pandas as pd
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from .mlconnector.client import (
        TRAIN_SCRIPT,
        api_client,
        upload,
        wait_deployment,
        wait_training,
    )

    data = load_diabetes(as_frame=True)
    csv = pd.concat([data.data, data.target.rename("target")], axis=1).to_csv(index=False).encode()
    with api_client(json_server) as c:
        before = scrape(c)
        mid = c.post("/model/add", json={"modelname": "ops", "modelkind": "regression"}).json()["id"]
        assert upload(c, mid, "train.py", TRAIN_SCRIPT, "code").status_code == 201
        assert upload(c, mid, "train.csv", csv, "data").status_code == 201
        assert upload(c, mid, "r.pkl", pickle.dumps(Ridge().fit(data.data, data.target)), "model").status_code == 201
        job = c.post("/mltraining/add", json={"modelid": mid})
        assert job.status_code == 201, job.text
        assert wait_training(c, job.json()["id"])["status"] == "succeeded"
        assert c.post("/deployment/add", json={"modelid": mid, "deployment_id": "dep-metrics"}).status_code == 201
        assert wait_deployment(c, "dep-metrics")["status"] == "running"
        for i in range(3):
            assert c.post("/deployment/dep-metrics/predict", json={"data": data.data.iloc[i].tolist()}).status_code == 200
        assert c.post("/deployment/dep-metrics/predict", json={"rows": []}).status_code == 422
        assert c.post("/deployment/nope/predict", json={"data": [1.0]}).status_code == 404
        time.sleep(2.1)  # the database-backed gauges are re-read at most every 2 s
        after = scrape(c)
        c.delete("/deployment/dep-metrics")
    assert delta(before, after, "mlagent_jobs", kind="training", backend="local", state="succeeded") == 1
    assert delta(before, after, "mlagent_predict_duration_seconds_count", outcome="ok") == 3
    assert delta(before, after, "mlagent_predict_duration_seconds_count", outcome="client_error") == 2
    assert delta(before, after, "mlagent_predict_errors_total", status="4xx") == 2
    assert delta(before, after, "mlagent_predict_errors_total", status="5xx") == 0


def test_task_turns_over_rest_and_grpc_carry_their_surface_account_and_request_id(json_server, fake_llm):
    """(This module's prices pause a task's first model call: it is approved over REST.)"""
    import grpc

    from mlagent.grpc import agent_runtime_pb2 as pb, agent_runtime_pb2_grpc as pb_grpc

    from .api_servers import wait_task

    def run_to_end(c: httpx.Client, task_id: str) -> None:
        assert wait_task(c, task_id)["status"] == "incomplete"
        approved = c.post(f"/api/tasks/{task_id}/approvals", json={"approve": True, "new_max_cost_usd": 100})
        assert approved.status_code == 200, approved.text
        assert wait_task(c, task_id)["status"] == "completed"

    with httpx.Client(base_url=json_server.url, headers={"X-API-Key": "dev-api-key"}, timeout=30) as c:
        before = scrape(c)
        rest = c.post("/api/tasks/", json={"prompt": "rest task"}, headers={"X-Request-ID": "rest-req-5"})
        assert rest.status_code == 200, rest.text
        rest_id = rest.json()["task_id"]
        run_to_end(c, rest_id)
        port = c.get("/readyz").json()["checks"]["grpc"]["port"]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc_id = pb_grpc.AgentServiceStub(channel).ExecuteTask(
                pb.ExecuteTaskRequest(prompt="grpc task"),
                metadata=(("x-api-key", "dev-api-key"), ("x-request-id", "grpc-req-7")), timeout=30).task_id
        run_to_end(c, grpc_id)
        after = scrape(c)
    assert delta(before, after, "mlagent_turns_total", status="paused", surface="api") == 1
    assert delta(before, after, "mlagent_turns_total", status="paused", surface="grpc") == 1
    assert delta(before, after, "mlagent_turns_total", status="completed", surface="api") == 2  # both resumed here
    rest_start = wait_lines(json_server, rest_id, 4)[0]
    grpc_start = wait_lines(json_server, grpc_id, 4)[0]
    assert rest_start["event"] == grpc_start["event"] == "turn.start"
    assert rest_start["surface"] == "api" and rest_start["request_id"] == "rest-req-5"
    assert grpc_start["surface"] == "grpc" and grpc_start["request_id"] == "grpc-req-7"
    assert rest_start["account"] == grpc_start["account"] != "-"
    assert SERVER_LLM_KEY not in json_server.log()  # (the public development key is named in a warning)
