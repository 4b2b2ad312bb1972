"""The official `openai` SDK, pointed at the server with base_url, works as documented."""

import threading

import openai
import pytest

from .fakes.llm import Reply


@pytest.fixture
def sdk(shared_server, fake_hub):
    token = fake_hub.user_token("sdk-user")
    client = openai.OpenAI(base_url=shared_server.url + "/v1", api_key=token, max_retries=0)
    yield client
    client.close()


def test_create_background_retrieve_and_extension_fields(sdk, fake_llm):
    fake_llm.push(Reply(text="SDK answer"))
    created = sdk.responses.create(input="hello", background=True, metadata={"ticket": "42"},
                                   extra_body={"max_cost_usd": 2.5})
    assert created.status == "queued"
    assert created.metadata == {"ticket": "42"}
    for _ in range(200):
        got = sdk.responses.retrieve(created.id)
        if got.status == "completed":
            break
        threading.Event().wait(0.05)
    assert got.status == "completed"
    assert got.output_text == "SDK answer"
    assert got.model_extra["max_cost_usd"] == 2.5
    assert got.usage.input_tokens == 11 and got.usage.output_tokens == 7


def test_stream_iterates_to_the_terminal_event_and_resumes(sdk, fake_llm):
    fake_llm.push(Reply(text="one two three four", chunks=4))
    events = list(sdk.responses.create(input="stream please", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three four"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.output_text == "one two three four"
    # Resume after the fourth event: exactly the rest, no gap, no duplicate.
    rest = list(sdk.responses.retrieve(final.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in rest] == list(range(4, len(events)))
    # Our extension events reach SDK users as generic objects with their fields.
    llm_call = next(e for e in events if e.type == "response.llm_call")
    assert llm_call.model_extra["input_tokens"] == 11


def test_cancel_through_sdk(sdk, fake_llm):
    gate = threading.Event()
    fake_llm.push(Reply(text="never shown", gate=gate))
    created = sdk.responses.create(input="long task", background=True)
    for _ in range(200):
        if sdk.responses.retrieve(created.id).status == "in_progress":
            break
        threading.Event().wait(0.05)
    sdk.responses.cancel(created.id)
    for _ in range(200):
        got = sdk.responses.retrieve(created.id)
        if got.status == "cancelled":
            break
        threading.Event().wait(0.05)
    gate.set()
    assert got.status == "cancelled"
    again = sdk.responses.cancel(created.id)  # idempotent
    assert again.status == "cancelled"


def test_sdk_errors_are_typed(sdk):
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve("resp_doesnotexist")
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(input="x", model="no/such-model", background=True)
    assert info.value.body["param"] == "model"
