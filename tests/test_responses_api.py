"""/v1/responses over HTTP and SSE: the three modes, chaining, cancel, resume, errors."""

import json
import threading

import pytest

from .fakes.llm import Reply
from .harness import collect_sse, iter_sse, wait_status


@pytest.fixture
def alice(shared_server, fake_hub):
    with shared_server.client(fake_hub.user_token("alice")) as c:
        yield c


@pytest.fixture
def bob(shared_server, fake_hub):
    with shared_server.client(fake_hub.user_token("bob")) as c:
        yield c


def wait_running(client, rid):
    body = wait_status(client, rid, {"in_progress", "completed", "failed", "cancelled"})
    assert body["status"] == "in_progress", body
    return body


def test_background_returns_queued_then_poll_shows_the_result(alice, fake_llm):
    fake_llm.push(Reply(text="The answer is 42."))
    r = alice.post("/v1/responses", json={"input": "question", "background": True, "metadata": {"k": "v"},
                                          "max_cost_usd": 3})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "queued" and body["object"] == "response" and body["id"].startswith("resp_")
    assert body["metadata"] == {"k": "v"} and body["max_cost_usd"] == 3 and body["artifacts"] == []
    done = wait_status(alice, body["id"], {"completed"})
    assert done["output"][0]["type"] == "message"
    assert done["output"][0]["content"][0]["text"] == "The answer is 42."
    assert done["usage"]["input_tokens"] == 11 and done["usage"]["total_tokens"] == 18
    assert done["metadata"] == {"k": "v"}


def test_synchronous_mode_waits_for_the_result(alice, fake_llm):
    fake_llm.push(Reply(text="sync result"))
    r = alice.post("/v1/responses", json={"input": "q"})
    assert r.status_code == 200
    assert r.json()["status"] == "completed"
    assert r.json()["output"][0]["content"][0]["text"] == "sync result"


def test_synchronous_mode_returns_in_progress_after_the_wait_and_the_run_continues(alice, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="slow result", gate=gate))
    r = alice.post("/v1/responses", json={"input": "q", "wait_timeout_seconds": 1})
    assert r.status_code == 200
    assert r.json()["status"] == "in_progress"
    gate.set()
    assert wait_status(alice, r.json()["id"], {"completed"})["status"] == "completed"


def test_stream_mode_sends_openai_events_without_id_lines(alice, fake_llm):
    fake_llm.push(Reply(text="streamed text", chunks=3))
    events = collect_sse(alice, "POST", "/v1/responses", json={"input": "q", "stream": True},
                         headers={"Accept": "application/json"})
    types = [e.event for e in events]
    assert types[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert types.count("response.completed") == 1
    for expected in ("response.output_item.added", "response.content_part.added", "response.output_text.delta",
                     "response.output_text.done", "response.output_item.done", "response.llm_call"):
        assert expected in types
    assert all(e.id is None for e in events)
    data = [e.json() for e in events]
    assert [d["sequence_number"] for d in data] == list(range(len(data)))
    assert all(d["type"] == e.event for d, e in zip(data, events, strict=True))
    assert "error" not in data[-1]
    assert data[-1]["response"]["output"][0]["content"][0]["text"] == "streamed text"


def test_events_endpoint_replays_with_ids_and_resumes_without_gap_or_duplicate(alice, fake_llm):
    fake_llm.push(Reply(text="abcdef", chunks=6))
    rid = alice.post("/v1/responses", json={"input": "q"}).json()["id"]
    full = collect_sse(alice, "GET", f"/v1/responses/{rid}/events")
    assert [int(e.id) for e in full] == list(range(len(full)))
    assert full[-1].event == "response.completed"
    by_header = collect_sse(alice, "GET", f"/v1/responses/{rid}/events", headers={"Last-Event-ID": "5"})
    assert [int(e.id) for e in by_header] == list(range(6, len(full)))
    by_query = collect_sse(alice, "GET", f"/v1/responses/{rid}/events?starting_after=5")
    assert [e.data for e in by_query] == [e.data for e in full[6:]]
    openai_form = collect_sse(alice, "GET", f"/v1/responses/{rid}?stream=true&starting_after=5")
    assert [e.data for e in openai_form] == [e.data for e in full[6:]]
    assert all(e.id is None for e in openai_form)


def test_live_tail_delivers_events_as_they_happen_with_keepalives(alice, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="tail", gate=gate))
    rid = alice.post("/v1/responses", json={"input": "q", "background": True}).json()["id"]
    comments: list[str] = []
    seen = []
    with alice.stream("GET", f"/v1/responses/{rid}/events") as r:
        for event in iter_sse(r, comments):
            seen.append(event.event)
            if event.event == "response.in_progress":
                # Idle now (the model is held): keep-alives arrive (the test server sends one a second).
                threading.Timer(2.5, gate.set).start()
    assert seen[-1] == "response.completed"
    assert comments, "expected keep-alive comments while idle"


def test_input_messages_become_context_and_instructions_are_prefixed(alice, fake_llm):
    fake_llm.push(Reply(text="ok"))
    alice.post("/v1/responses", json={
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": "earlier question"},
                  {"role": "assistant", "content": "earlier answer"},
                  {"role": "user", "content": [{"type": "input_text", "text": "the task"}]}],
    })
    messages = fake_llm.requests[-1].messages
    assert [m["role"] for m in messages[-4:]] == ["system", "user", "assistant", "user"]
    assert messages[-4]["content"] == "Be brief."
    assert messages[-1]["content"] == "the task"


def test_previous_response_id_continues_the_session(alice, fake_llm):
    fake_llm.push(Reply(text="I recommend BAAI/bge-m3."), Reply(text="import sentence_transformers"))
    first = alice.post("/v1/responses", json={"input": "Recommend an embedding model."}).json()
    second = alice.post("/v1/responses", json={"input": "Write code using it.",
                                               "previous_response_id": first["id"], "max_cost_usd": 9}).json()
    assert second["status"] == "completed"
    assert second["session_id"] == first["session_id"]
    assert second["previous_response_id"] == first["id"]
    assert second["max_cost_usd"] == 9
    contents = [m.get("content") for m in fake_llm.requests[-1].messages]
    assert "Recommend an embedding model." in contents
    assert "I recommend BAAI/bge-m3." in contents
    assert contents[-1] == "Write code using it."


def test_chaining_onto_a_busy_session_is_409_and_not_retryable(alice, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="busy", gate=gate))
    first = alice.post("/v1/responses", json={"input": "q", "background": True}).json()
    r = alice.post("/v1/responses", json={"input": "more", "previous_response_id": first["id"]})
    gate.set()
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "session_busy"
    assert r.headers["x-should-retry"] == "false"
    wait_status(alice, first["id"], {"completed"})


def test_cancel_is_asynchronous_idempotent_and_ends_cancelled(alice, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="never", gate=gate))
    rid = alice.post("/v1/responses", json={"input": "q", "background": True}).json()["id"]
    wait_running(alice, rid)
    r = alice.post(f"/v1/responses/{rid}/cancel")
    assert r.status_code == 200 and r.json()["status"] in {"in_progress", "cancelled"}
    done = wait_status(alice, rid, {"cancelled"})
    gate.set()
    assert done["status"] == "cancelled"
    events = collect_sse(alice, "GET", f"/v1/responses/{rid}/events")
    # Seed 000: a cancellation ends on response.cancelled, carrying status "cancelled".
    assert events[-1].event == "response.cancelled" and events[-1].json()["response"]["status"] == "cancelled"
    assert sum(e.event in ("response.completed", "response.failed", "response.cancelled", "response.incomplete")
               for e in events) == 1
    again = alice.post(f"/v1/responses/{rid}/cancel").json()
    assert again == done


def test_cancelling_a_finished_response_returns_it_unchanged(alice, fake_llm):
    done = alice.post("/v1/responses", json={"input": "q"}).json()
    assert done["status"] == "completed"
    assert alice.post(f"/v1/responses/{done['id']}/cancel").json() == done


def test_failure_inside_the_run_is_a_failed_response_not_an_http_error(alice, fake_llm):
    fake_llm.push(Reply(status=401))
    r = alice.post("/v1/responses", json={"input": "q"})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "failed"
    assert body["error"]["code"] == "inference_provider_permission_required"
    fake_llm.push(Reply(status=500))
    body = alice.post("/v1/responses", json={"input": "q"}).json()
    assert body["status"] == "failed" and body["error"]["code"] == "llm_error"
    events = collect_sse(alice, "GET", f"/v1/responses/{body['id']}/events")
    assert events[-1].event == "response.failed"
    assert "error" not in {k for k in events[-1].json() if k != "response"}


def test_an_error_inside_the_upstream_stream_fails_the_response_as_llm_error(alice, fake_llm):
    fake_llm.push(Reply(text="partial answer", chunks=2, stream_error="upstream overloaded"))
    body = alice.post("/v1/responses", json={"input": "q"}).json()
    assert body["status"] == "failed" and body["error"]["code"] == "llm_error"
    fake_llm.push(Reply(status=404))
    body = alice.post("/v1/responses", json={"input": "q"}).json()
    assert body["status"] == "failed" and body["error"]["code"] == "model_not_found"


def test_server_tool_runs_are_mcp_call_items(alice, fake_llm):
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "look up models", "status": "in_progress"}]})]),
                  Reply(text="planned"))
    body = alice.post("/v1/responses", json={"input": "q"}).json()
    kinds = [item["type"] for item in body["output"]]
    assert kinds == ["mcp_call", "message"]
    call = body["output"][0]
    assert call["name"] == "update_plan" and call["server_label"] == "mlagent" and call["status"] == "completed"
    assert '"look up models"' in call["arguments"] and call["output"] and call["duration_ms"] >= 0
    events = collect_sse(alice, "GET", f"/v1/responses/{body['id']}/events")
    names = [e.event for e in events]
    assert names.index("response.mcp_call.in_progress") < names.index("response.mcp_call.completed")
    assert next(e.json() for e in events if e.event == "response.tool_log")["call_id"] == call["call_id"]
    plan = next(e.json() for e in events if e.event == "response.plan")
    assert plan["steps"] == [{"step": "look up models", "status": "in_progress"}]
    assert any(e.event == "response.tool_log" for e in events)
    assert body["usage"]["llm_calls"] == 2


def test_another_accounts_response_is_404(alice, bob, fake_llm):
    rid = alice.post("/v1/responses", json={"input": "q"}).json()["id"]
    assert alice.get(f"/v1/responses/{rid}").json()["status"] == "completed"  # now kept in memory: still hers only
    for method, url in (("GET", f"/v1/responses/{rid}"), ("GET", f"/v1/responses/{rid}/events"),
                        ("POST", f"/v1/responses/{rid}/cancel")):
        r = bob.request(method, url)
        assert r.status_code == 404, (method, url)
        assert r.json()["error"]["code"] == "not_found"
    r = bob.post("/v1/responses", json={"input": "q", "previous_response_id": rid})
    assert r.status_code == 404 and r.json()["error"]["param"] == "previous_response_id"


def test_a_finished_response_read_again_answers_the_same(alice, bob, shared_server, fake_llm):
    """The second read of a finished response comes from memory (api/finished.py): the same
    bytes and headers to its owner and the operator; everyone else gets what the route says."""
    rid = alice.post("/v1/responses", json={"input": "q"}).json()["id"]
    url = f"/v1/responses/{rid}"
    first = alice.get(url)  # from the database; kept from here on
    again = alice.get(url, headers={"X-Request-ID": "req-kept-1"})
    assert first.json()["status"] == "completed" and again.content == first.content
    assert again.headers["content-type"] == "application/json" and again.headers["x-request-id"] == "req-kept-1"
    assert [bob.get(url).status_code for _ in range(2)] == [404, 404]  # the second with bob's token known
    with shared_server.client() as anyone:
        assert anyone.get(url).json()["error"]["code"] == "missing_api_key"
        assert anyone.get(url, headers={"X-API-Key": "wrong"}).status_code == 401
        assert anyone.get(url, headers={"Authorization": "Bearer hf_unknown"}).status_code == 401
        assert anyone.get(url, headers={"X-API-Key": "dev-api-key"}).content == first.content  # the operator (dev key)
    streamed = alice.get(url, params={"stream": "true"})
    assert streamed.headers["content-type"].startswith("text/event-stream") and "response.completed" in streamed.text


@pytest.mark.parametrize("body,param", [
    ({}, "input"),
    ({"input": ""}, "input"),
    ({"input": "x" * 100_001}, "input"),
    ({"input": [{"role": "user", "content": "y" * 100_001}]}, "input[0].content"),
    ({"input": "q", "instructions": "z" * 20_001}, "instructions"),
    ({"input": "q", "max_cost_usd": 0}, "max_cost_usd"),
    ({"input": "q", "max_cost_usd": 500.01}, "max_cost_usd"),
    ({"input": "q", "wait_timeout_seconds": 0.5}, "wait_timeout_seconds"),
    ({"input": "q", "wait_timeout_seconds": 3601}, "wait_timeout_seconds"),
    ({"input": "q", "metadata": {"k": 1}}, "metadata.k"),
    ({"input": "q", "model": "nobody/unknown"}, "model"),
    ({"input": "q", "frobnicate": True}, "frobnicate"),
    ({"input": "q", "background": "maybe"}, "background"),
])
def test_bad_requests_are_400_naming_the_field(alice, body, param):
    r = alice.post("/v1/responses", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"
    assert param.split(".")[0].split("[")[0] in err["message"]


def test_malformed_json_is_400(alice):
    r = alice.post("/v1/responses", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]["message"]


def test_unknown_response_and_bad_cursor(alice):
    assert alice.get("/v1/responses/resp_nope").status_code == 404
    rid = alice.post("/v1/responses", json={"input": "q"}).json()["id"]
    r = alice.get(f"/v1/responses/{rid}/events", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "Last-Event-ID"


def test_model_config_lists_models_and_the_default(shared_server):
    with shared_server.client() as c:
        body = c.get("/api/config/model").json()
    ids = [m["id"] for m in body["models"]]
    assert body["default"] in ids and "moonshotai/Kimi-K2.6:novita" in ids


def test_idempotency_key_never_starts_a_second_turn(alice, fake_llm):
    fake_llm.push(Reply(text="once"))
    headers = {"Idempotency-Key": "create-123"}
    first = alice.post("/v1/responses", json={"input": "q", "background": True}, headers=headers).json()
    second = alice.post("/v1/responses", json={"input": "q", "background": True}, headers=headers).json()
    assert first["id"] == second["id"]
    wait_status(alice, first["id"], {"completed"})
    assert len(fake_llm.requests) == 1


def test_snapshot_equals_the_replayed_log(alice, fake_llm):
    from mlagent.events.reducer import replay
    from mlagent.events.types import parse_event

    fake_llm.push(Reply(tool_calls=[("no_such_tool", {"a": 1})]), Reply(text="after the tool", chunks=5))
    body = alice.post("/v1/responses", json={"input": "q"}).json()
    events = collect_sse(alice, "GET", f"/v1/responses/{body['id']}/events")
    rebuilt = replay(parse_event(json.loads(e.data)) for e in events)
    assert rebuilt.model_dump(mode="json") == body
    assert "unknown tool" in body["output"][0]["output"]
