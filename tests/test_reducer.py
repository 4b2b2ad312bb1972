"""The reducer: pure, deterministic, and a replay equals the live projection."""

from hypothesis import given, strategies as st

from mlagent.events.reducer import apply, replay
from mlagent.events.response import MessageItem, OutputText, ResponseObject
from mlagent.events.types import (
    ContentPartAdded,
    LlmCall,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ResponseCompleted,
    ResponseCreated,
    parse_event,
)
from mlagent.runtime.emitter import truncate_output


def base() -> ResponseObject:
    return ResponseObject(id="resp_1", created_at=0, model="m", session_id="sess_1", max_cost_usd=1)


def message_events(index: int, pieces: list[str]) -> list:
    item = MessageItem(id=f"msg_{index}")
    events = [OutputItemAdded(output_index=index, item=item),
              ContentPartAdded(item_id=item.id, output_index=index, content_index=0, part=OutputText())]
    events += [OutputTextDelta(item_id=item.id, output_index=index, content_index=0, delta=p) for p in pieces]
    text = "".join(pieces)
    events += [OutputTextDone(item_id=item.id, output_index=index, content_index=0, text=text),
               OutputItemDone(output_index=index, item=item.model_copy(update={
                   "status": "completed", "content": [OutputText(text=text)]}))]
    return events


@given(st.lists(st.lists(st.text(max_size=8), max_size=6), min_size=1, max_size=4))
def test_deltas_accumulate_into_messages_and_replay_through_json_is_identical(messages):
    events = [ResponseCreated(response=base())]
    for i, pieces in enumerate(messages):
        events += message_events(i, pieces)
    events.append(ResponseCompleted(response=base().model_copy(update={"status": "completed"})))
    state = replay(events)
    assert [item.content[0].text for item in state.output] == ["".join(p) for p in messages]
    assert state.status == "completed"
    # The same events through their JSON form (what the log stores) give the same state.
    again = replay(parse_event(e.model_dump_json()) for e in events)
    assert again == state


def test_apply_never_mutates_its_input():
    state = apply(None, ResponseCreated(response=base()))
    before = state.model_dump()
    later = state
    for event in message_events(0, ["a", "b"]):
        previous = later.model_dump()
        later = apply(later, event)
        assert later is not state
    assert state.model_dump() == before
    assert previous != later.model_dump()


def test_lifecycle_snapshots_keep_the_accumulated_output_and_usage():
    state = replay([ResponseCreated(response=base()), *message_events(0, ["hi"]),
                    LlmCall(model="m", latency_ms=1, input_tokens=3, output_tokens=4)])
    done = apply(state, ResponseCompleted(response=base().model_copy(update={"status": "completed"})))
    assert done.output == state.output
    assert done.usage.total_tokens == 7 and done.usage.llm_calls == 1


@given(st.text(max_size=6000))
def test_truncation_keeps_at_most_4kb_of_utf8_and_says_so(text):
    out = truncate_output(text)
    if len(text.encode()) <= 4096:
        assert out == text
    else:
        head = out.split("\n…[truncated", 1)[0]
        assert len(head.encode()) <= 4096 and text.startswith(head)
        assert "response.tool_log" in out


async def test_forwarded_internal_events_are_ignored_by_the_reducer():
    from mlagent.agent.notices import JobStatusNotice
    from mlagent.runtime.notices import NoticeRouter

    class Sink:
        def __init__(self) -> None:
            self.events: list = []

        async def emit(self, event) -> None:
            self.events.append(event)

    sink = Sink()  # a job's progress has no event class of its own: it is forwarded
    await NoticeRouter(sink).route(JobStatusNotice(job_id="job_1", stage="RUNNING", message=None, url="u"))
    [event] = sink.events
    assert event.type == "response.job_status"
    state = apply(None, ResponseCreated(response=base()))
    parsed = parse_event(event.model_dump_json())
    assert parsed.model_dump() == event.model_dump()
    assert apply(state, parsed) == state
