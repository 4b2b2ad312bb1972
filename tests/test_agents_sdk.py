"""The OpenAI Agents SDK (`openai-agents`) against the real server, the fake LLM scripted per test.

The SDK is the client most users build with: it must run plain turns, turns in which the
server's agent calls its own tools (reported as hosted `mcp_call` items, which the SDK treats
as already executed), client `@function_tool`s (round trip with and without
previous_response_id), a pydantic `output_type`, and `Runner.run_streamed`."""

import asyncio
import json

import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.items import ToolCallItem
from openai import AsyncOpenAI
from openai.types.responses.response_output_item import McpCall
from pydantic import BaseModel

from .fakes.llm import Reply

set_tracing_disabled(True)  # the SDK would otherwise export traces to api.openai.com


class Forecast(BaseModel):
    city: str
    celsius: float


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture
def run(loop):
    """Run a coroutine on the test's one event loop (the SDK's HTTP client is bound to it)."""
    return lambda coro: loop.run_until_complete(asyncio.wait_for(coro, 120))


@pytest.fixture
def make_agent(shared_server, fake_hub, loop):
    token = fake_hub.user_token("agents-sdk-user")
    clients: list[AsyncOpenAI] = []

    def make(**kwargs) -> Agent:
        client = AsyncOpenAI(base_url=shared_server.url + "/v1", api_key=token, max_retries=0)
        clients.append(client)
        model = OpenAIResponsesModel(model="moonshotai/Kimi-K2.6:novita", openai_client=client)
        return Agent(name="assistant", instructions="Be brief.", model=model, **kwargs)

    yield make
    for client in clients:
        loop.run_until_complete(client.close())


def test_plain_run(make_agent, run, fake_llm):
    fake_llm.push(Reply(text="Hello from the server."))
    result = run(Runner.run(make_agent(), "hi"))
    assert result.final_output == "Hello from the server."
    assert fake_llm.requests[-1].messages[-1] == {"role": "user", "content": "hi"}


def test_the_servers_own_tools_are_already_executed(make_agent, run, fake_llm):
    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": [{"step": "answer", "status": "in_progress"}]})]),
                  Reply(text="Planned and answered."))
    result = run(Runner.run(make_agent(), "plan it"))
    assert result.final_output == "Planned and answered."
    calls = [i.raw_item for i in result.new_items if isinstance(i, ToolCallItem)]
    assert len(calls) == 1 and isinstance(calls[0], McpCall)
    assert calls[0].name == "update_plan" and calls[0].server_label == "mlagent" and calls[0].output
    assert len(fake_llm.requests) == 2  # both model calls made by the server, one SDK turn


@pytest.mark.parametrize("chained", [False, True], ids=["whole-conversation", "previous_response_id"])
def test_a_client_function_tool_round_trip(make_agent, run, fake_llm, chained):
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"sunny in {city}, 22C"

    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": []}), ("get_weather", {"city": "Paris"})]),
                  Reply(text="It is sunny in Paris."))
    agent = make_agent(tools=[get_weather])
    result = run(Runner.run(agent, "weather in Paris?", auto_previous_response_id=chained))
    assert result.final_output == "It is sunny in Paris."
    assert ran == ["Paris"]
    first, second = fake_llm.requests[-2:]
    assert "get_weather" in {t["function"]["name"] for t in first.body["tools"]}
    tool_results = [m["content"] for m in second.messages if m["role"] == "tool"]
    assert tool_results[-1] == "sunny in Paris, 22C"
    assert len(tool_results) == 2  # the server's update_plan result and the client's, once each
    user_turns = [m for m in second.messages if m["role"] == "user"]
    assert len(user_turns) == 1  # the question is not repeated, whichever way the SDK chains


def test_a_pydantic_output_type(make_agent, run, fake_llm):
    fake_llm.push(Reply(text=json.dumps({"city": "Oslo", "celsius": -3})))
    result = run(Runner.run(make_agent(output_type=Forecast), "forecast for Oslo"))
    assert result.final_output == Forecast(city="Oslo", celsius=-3)
    fmt = fake_llm.requests[-1].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True


def test_run_streamed(make_agent, run, fake_llm):
    ran: list[int] = []

    @function_tool
    def lucky_number() -> int:
        """A lucky number."""
        ran.append(7)
        return 7

    fake_llm.push(Reply(tool_calls=[("update_plan", {"steps": []})]), Reply(tool_calls=[("lucky_number", {})]),
                  Reply(text="streamed answer", chunks=4))

    async def go():
        agent = make_agent(model_settings=ModelSettings(temperature=0.2), tools=[lucky_number])
        result = Runner.run_streamed(agent, "stream it")
        kinds = []
        async for event in result.stream_events():
            kinds.append(event.type)
        return result, kinds

    result, kinds = run(go())
    assert result.final_output == "streamed answer" and ran == [7]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert fake_llm.requests[-1].body["temperature"] == 0.2
