"""The rest of the Responses surface, through the official `openai` SDK: structured outputs,
client function tools, tool_choice, sampling fields, input items, delete, models, input-token
counts, and streams whose every event the SDK's typed union accepts."""

import json
import threading
import typing

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel

from .fakes.llm import Reply

# The SDK's typed stream union, by event type (its discriminator is the SDK's own, not pydantic's).
STREAM_EVENTS = {typing.get_args(cls.model_fields["type"].annotation)[0]: cls
                 for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])}
# mlagent's own stream events (docs/responses-api.md): seed 000's extensions.
VENDOR_EVENTS = {"response.llm_call", "response.tool_log", "response.plan", "response.artifact.created",
                 "response.approval_required", "response.cost.updated"}
SDK_TERMINAL = {"response.completed", "response.failed", "response.incomplete"}
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False}, "strict": True}


class Weather(BaseModel):
    city: str
    celsius: float


@pytest.fixture
def token(fake_hub):
    return fake_hub.user_token("surface-user")


@pytest.fixture
def sdk(shared_server, token):
    client = openai.OpenAI(base_url=shared_server.url + "/v1", api_key=token, max_retries=0)
    yield client
    client.close()


@pytest.fixture
def http(shared_server, token):
    with httpx.Client(base_url=shared_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        yield c


def _raw_events(http, body):
    """POST with stream: true and return every event's JSON, in order."""
    events = []
    with http.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


# -- structured outputs ------------------------------------------------------------------------
def test_parse_with_text_format_sends_the_schema_and_reports_it(sdk, fake_llm):
    fake_llm.push(Reply(text='{"city": "Paris", "celsius": 21.5}'))
    parsed = sdk.responses.parse(input="weather?", text_format=Weather)
    assert parsed.status == "completed"
    assert parsed.output_parsed == Weather(city="Paris", celsius=21.5)
    sent = fake_llm.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["required"] == ["city", "celsius"]
    assert parsed.text.format.type == "json_schema" and parsed.text.format.name == "Weather"


def test_the_sdk_stream_helper_parses_the_final_answer(sdk, fake_llm):
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": []})]),
                  Reply(reasoning="hmm", text='{"city": "Bern", "celsius": 9}', chunks=4))
    with sdk.responses.stream(input="weather?", text_format=Weather, model="moonshotai/Kimi-K2.6:novita") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert final.output_parsed == Weather(city="Bern", celsius=9)
    assert kinds[-1] == "response.completed" and "response.mcp_call.completed" in kinds


def test_an_answer_off_the_schema_fails_clearly(sdk, fake_llm):
    fake_llm.push(Reply(text='{"city": "Paris"}'))
    got = sdk.responses.create(input="weather?", text={"format": {
        "type": "json_schema", "name": "Weather", "strict": True, "schema": Weather.model_json_schema()}})
    assert got.status == "failed" and got.error.code == "invalid_structured_output"
    assert "celsius" in got.error.message
    fake_llm.push(Reply(text="sure, here you go"))
    got = sdk.responses.create(input="json please", text={"format": {"type": "json_object"}})
    assert got.status == "failed" and got.error.code == "invalid_structured_output"
    assert fake_llm.requests[-1].body["response_format"] == {"type": "json_object"}
    fake_llm.push(Reply(text='{"ok": true}'))
    got = sdk.responses.create(input="json please", text={"format": {"type": "json_object"}})
    assert got.status == "completed" and json.loads(got.output_text) == {"ok": True}


def test_a_model_that_refuses_response_format_is_a_clear_failure(sdk, fake_llm):
    fake_llm.push(Reply(status=400))
    got = sdk.responses.create(input="json please", text={"format": {"type": "json_object"}})
    assert got.status == "failed" and got.error.code == "structured_output_unsupported"
    assert "json_object" in got.error.message


# -- client function tools ---------------------------------------------------------------------
def test_client_tool_round_trip_with_previous_response_id(sdk, fake_llm):
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "ask", "status": "in_progress"}]}),
                                    ("get_weather", {"city": "Paris"})]))
    first = sdk.responses.create(input="weather in Paris?", tools=[WEATHER_TOOL])
    assert first.status == "completed"
    assert [i.type for i in first.output] == ["mcp_call", "function_call"]
    call = first.output[1]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    offered = {t["function"]["name"] for t in fake_llm.requests[-1].body["tools"]}
    assert {"get_weather", "update_plan"} <= offered
    # The session waits for the output: a request without it is refused.
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(input="and?", previous_response_id=first.id, tools=[WEATHER_TOOL])
    assert info.value.body["param"] == "input" and call.call_id in info.value.body["message"]
    fake_llm.push(Reply(text="Sunny, 21 degrees."))
    second = sdk.responses.create(previous_response_id=first.id, tools=[WEATHER_TOOL], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.status == "completed" and second.output_text == "Sunny, 21 degrees."
    messages = fake_llm.requests[-1].messages
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    assert tool_msgs[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}
    assert len(tool_msgs) == 2  # update_plan's result and the client's


def test_client_tool_round_trip_with_the_whole_conversation_as_input(sdk, fake_llm):
    fake_llm.push(Reply(tool_calls=[("get_weather", {"city": "Oslo"})]))
    first = sdk.responses.create(input="weather in Oslo?", tools=[WEATHER_TOOL])
    call = first.output[0]
    fake_llm.push(Reply(text="Cold."))
    items = [{"role": "user", "content": "weather in Oslo?"},
             {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
             {"type": "function_call_output", "call_id": call.call_id, "output": "-3C"}]
    second = sdk.responses.create(input=items, tools=[WEATHER_TOOL])
    assert second.output_text == "Cold." and second.session_id != first.session_id  # type: ignore[attr-defined]
    messages = fake_llm.requests[-1].messages
    assert messages[-2]["tool_calls"][0]["id"] == call.call_id
    assert messages[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "-3C"}


def test_tool_choice_and_parallel_tool_calls_reach_the_model(sdk, fake_llm):
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": []})]), Reply(text="ok"))
    sdk.responses.create(input="plan", tool_choice="required", parallel_tool_calls=False)
    first, second = (r.body for r in fake_llm.requests[-2:])
    assert first["tool_choice"] == "required" and first["parallel_tool_calls"] is False
    assert "tool_choice" not in second  # forced once, then the model may answer
    fake_llm.push(Reply(tool_calls=[("get_weather", {"city": "Rome"})]))
    got = sdk.responses.create(input="w", tools=[WEATHER_TOOL], tool_choice={"type": "function", "name": "get_weather"})
    assert fake_llm.requests[-1].body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert got.tool_choice.name == "get_weather"
    fake_llm.push(Reply(text="no tools"))
    sdk.responses.create(input="w", tool_choice="none")
    assert fake_llm.requests[-1].body["tool_choice"] == "none"


@pytest.mark.parametrize("parallel", [True, False])
def test_several_tool_calls_of_one_step_each_report_their_own_result(sdk, fake_llm, parallel):
    steps = [[{"step": f"plan {n}", "status": "pending"}] for n in (1, 2, 3)]
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": s}) for s in steps]), Reply(text="done"))
    got = sdk.responses.create(input="q", parallel_tool_calls=parallel)
    calls = [i for i in got.output if i.type == "mcp_call"]
    assert [json.loads(c.arguments)["steps"] for c in calls] == steps  # in the model's order
    assert all(c.status == "completed" and c.output for c in calls)
    tool_msgs = [m for m in fake_llm.requests[-1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [c.model_extra["call_id"] for c in calls]


def test_max_tool_calls_stops_offering_tools(sdk, fake_llm):
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": []})]), Reply(text="answered"))
    got = sdk.responses.create(input="q", max_tool_calls=1, tools=[WEATHER_TOOL])
    assert got.output_text == "answered" and got.max_tool_calls == 1
    first, second = (r.body for r in fake_llm.requests[-2:])
    assert first["tools"] and "tools" not in second


def test_sampling_fields_reach_the_model_and_are_echoed(sdk, fake_llm):
    fake_llm.push(Reply(text="ok"))
    got = sdk.responses.create(input="q", temperature=0.3, top_p=0.9, max_output_tokens=256,
                               reasoning={"effort": "low"}, prompt_cache_key="k-1", truncation="disabled",
                               include=["file_search_call.results"], store=True)
    body = fake_llm.requests[-1].body
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.9, 256)
    assert body["reasoning_effort"] == "low" and body["prompt_cache_key"] == "k-1"
    assert (got.temperature, got.top_p, got.max_output_tokens) == (0.3, 0.9, 256)
    assert got.reasoning.effort == "low" and got.truncation == "disabled"


def test_reasoning_from_the_upstream_becomes_a_reasoning_item(sdk, fake_llm):
    fake_llm.push(Reply(reasoning="First think about the question.", text="42"))
    events = list(sdk.responses.create(input="q", stream=True))
    final = events[-1].response
    assert [i.type for i in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "First think about the question."
    deltas = [e.delta for e in events if e.type == "response.reasoning_text.delta"]
    assert "".join(deltas) == "First think about the question."


# -- bad input: a 400 naming the field, nothing written ------------------------------------------
@pytest.mark.parametrize("body, param", [
    ({"tools": [{**WEATHER_TOOL, "name": "update_plan"}]}, "tools[0].name"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{**WEATHER_TOOL, "parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}]},
     "tools[0].parameters"),
    ({"text": {"format": {"type": "json_schema", "name": "X", "schema": {"type": "object", "required": "a"}}}},
     "text.format.schema"),
    ({"text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}, "text.format.name"),
    ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice.name"),
    ({"input": [{"type": "function_call_output", "call_id": "call_nowhere", "output": "x"}]}, "input[0].call_id"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ({"store": False}, "store"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"include": ["message.output_text.logprobs"]}, "include[0]"),
    ({"service_tier": "flex"}, "service_tier"),
    ({"temperature": 3}, "temperature"),
    ({"reasoning": {"effort": "low", "summary": "detailed"}}, "reasoning.summary"),
    ({"no_such_field": 1}, "no_such_field"),
])
def test_bad_input_is_a_400_naming_the_field(http, fake_llm, body, param):
    before = len(fake_llm.requests)
    r = http.post("/v1/responses", json={"input": "q", **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    if param == "tools[0].name":
        assert "update_plan" in r.json()["error"]["message"]
    assert len(fake_llm.requests) == before  # no turn ran


def test_an_unknown_call_id_on_a_chained_request_leaves_the_session_untouched(sdk, http, fake_llm):
    fake_llm.push(Reply(tool_calls=[("get_weather", {"city": "Lima"})]))
    first = sdk.responses.create(input="Lima?", tools=[WEATHER_TOOL])
    call_id = first.output[0].call_id
    r = http.post("/v1/responses", json={"previous_response_id": first.id, "tools": [WEATHER_TOOL], "input": [
        {"type": "function_call_output", "call_id": "call_other", "output": "x"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[0].call_id"
    fake_llm.push(Reply(text="Warm."))
    ok = sdk.responses.create(previous_response_id=first.id, tools=[WEATHER_TOOL], input=[
        {"type": "function_call_output", "call_id": call_id, "output": "25C"}])
    assert ok.output_text == "Warm."
    tool_msgs = [m for m in fake_llm.requests[-1].messages if m["role"] == "tool"]
    assert [m["content"] for m in tool_msgs] == ["25C"]


# -- endpoints ---------------------------------------------------------------------------------
def test_input_items_are_listed_and_paged(sdk, fake_llm):
    fake_llm.push(Reply(text="ok"))
    got = sdk.responses.create(input=[{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"},
                                      {"role": "user", "content": "three"}])
    page = sdk.responses.input_items.list(got.id, limit=2, order="asc")
    assert [i.content[0].text for i in page.data] == ["one", "two"] and page.has_more
    rest = sdk.responses.input_items.list(got.id, limit=2, order="asc", after=page.last_id)
    assert [i.content[0].text for i in rest.data] == ["three"] and not rest.has_more
    newest_first = sdk.responses.input_items.list(got.id)
    assert [i.content[0].text for i in newest_first.data] == ["three", "two", "one"]
    assert [i.content[0].text for i in sdk.responses.input_items.list(got.id).data][0] == "three"


def test_input_items_include_takes_only_the_documented_values(sdk, http, fake_llm):
    """A fuzzer's find: `include[]` was any string here while the document (and POST) take
    OpenAI's `Includable` values only."""
    fake_llm.push(Reply(text="ok"))
    got = sdk.responses.create(input="q")
    listed = sdk.responses.input_items.list(got.id, include=["message.input_image.image_url"])
    assert [i.content[0].text for i in listed.data] == ["q"]
    bad = http.get(f"/v1/responses/{got.id}/input_items", params={"include[]": "-6.534973681906149e+16"})
    assert bad.status_code == 400, bad.text
    assert "include[]" in bad.json()["error"]["param"], bad.json()


def test_delete_removes_the_response_and_its_log(sdk, http, fake_llm):
    fake_llm.push(Reply(text="ok"))
    got = sdk.responses.create(input="q")
    assert sdk.responses.retrieve(got.id).status == "completed"  # read once: a finished one is kept in memory
    assert sdk.responses.delete(got.id) is None
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(got.id)
    assert http.get(f"/v1/responses/{got.id}/events").status_code == 404
    assert http.delete(f"/v1/responses/{got.id}").status_code == 404


def test_delete_cancels_a_running_response_first(sdk, http, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="never", gate=gate))
    created = sdk.responses.create(input="long", background=True)
    for _ in range(400):
        if sdk.responses.retrieve(created.id).status == "in_progress":
            break
        threading.Event().wait(0.05)
    try:
        r = http.delete(f"/v1/responses/{created.id}")
    finally:
        gate.set()
    assert r.status_code == 200 and r.json() == {"id": created.id, "object": "response", "deleted": True}
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)


def test_models_list_matches_the_config_endpoint(sdk, http):
    ids = [m.id for m in sdk.models.list().data]
    assert ids == [m["id"] for m in http.get("/api/config/model").json()["models"]]
    assert sdk.models.retrieve(ids[0]).id == ids[0]


def test_input_tokens_counts_the_first_model_call(sdk):
    small = sdk.responses.input_tokens.count(input="hi")
    big = sdk.responses.input_tokens.count(input="hi " * 2000, tools=[WEATHER_TOOL])
    assert small.object == "response.input_tokens" and 0 < small.input_tokens < big.input_tokens


# -- streams -----------------------------------------------------------------------------------
def test_every_streamed_event_parses_with_the_sdk_typed_union(http, fake_llm):
    fake_llm.push(Reply(reasoning="thinking it over", tool_calls=[("update_plan", {"steps": [
                      {"step": "check", "status": "in_progress"}]})]),
                  Reply(text="partial answer", chunks=3, tool_calls=[("get_weather", {"city": "Nice"})]))
    events = _raw_events(http, {"input": "q", "tools": [WEATHER_TOOL]})
    seen = set()
    for raw in events:
        seen.add(raw["type"])
        if raw["type"] in VENDOR_EVENTS:
            continue
        assert raw["type"] in STREAM_EVENTS, raw["type"]
        STREAM_EVENTS[raw["type"]].model_validate(raw)  # validated: every required field present and typed
    assert {"response.mcp_call.in_progress", "response.mcp_call.completed", "response.reasoning_text.delta",
            "response.output_text.delta", "response.output_item.done", "response.queued"} <= seen
    assert sum(e["type"] in SDK_TERMINAL for e in events) == 1 and events[-1]["type"] == "response.completed"
    final = Response.model_validate(events[-1]["response"])
    assert [i.type for i in final.output] == ["reasoning", "mcp_call", "message", "function_call"]
    # The stored projection is the replay of these events (reasoning and tool items included).
    from mlagent.events.reducer import replay
    from mlagent.events.types import parse_event

    rebuilt = replay(parse_event(e) for e in events)
    assert rebuilt.model_dump(mode="json") == http.get(f"/v1/responses/{final.id}").json()


def test_a_cancelled_stream_ends_on_seed_000s_one_terminal_event(sdk, http, fake_llm):
    """Seed 000 names `response.cancelled`; the SDK's stream still yields it (built loosely:
    an event type it does not know keeps its `response` as a plain dict), with the cancelled
    response on it, and nothing after it."""
    gate = threading.Event()
    fake_llm.push(Reply(text="never", gate=gate))
    created = sdk.responses.create(input="long", background=True)
    for _ in range(400):
        if sdk.responses.retrieve(created.id).status == "in_progress":
            break
        threading.Event().wait(0.05)
    sdk.responses.cancel(created.id)
    gate.set()
    events = list(sdk.responses.retrieve(created.id, stream=True))
    terminal = [e for e in events if e.type in SDK_TERMINAL | {"response.cancelled"}]
    assert len(terminal) == 1 and events[-1] is terminal[0]
    assert terminal[0].type == "response.cancelled"
    cancelled = Response.model_validate(terminal[0].response)  # a whole Response, as OpenAI's types read it
    assert cancelled.id == created.id and cancelled.status == "cancelled"
