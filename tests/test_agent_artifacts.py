"""Artifacts on the response: aggregated from `response.artifact.created` events and
deduplicated by identity, the same on replay through the log's JSON; context compaction."""

from hypothesis import given, strategies as st

from mlagent.agent.loop import compact, estimate_tokens
from mlagent.events.reducer import replay
from mlagent.events.response import Artifact, ResponseObject
from mlagent.events.types import ArtifactCreated, ResponseCompleted, ResponseCreated, parse_event


def base() -> ResponseObject:
    return ResponseObject(id="resp_1", created_at=0, model="m", session_id="sess_1", max_cost_usd=1)


ARTIFACTS = [
    {"type": "hf_job", "id": "j1", "url": "https://hf.co/jobs/a/j1"},
    {"type": "hf_job", "id": "j2", "url": "https://hf.co/jobs/a/j2"},
    {"type": "trackio_dashboard", "space_id": "a/trackio", "url": "https://hf.co/spaces/a/trackio", "project": "p"},
    {"type": "model", "repo_id": "a/m", "url": "https://hf.co/a/m"},
    {"type": "space", "repo_id": "a/trackio", "url": "https://hf.co/spaces/a/trackio"},
    {"type": "collection", "slug": "a/c-1", "url": "https://hf.co/collections/a/c-1"},
]


@given(st.lists(st.sampled_from(range(len(ARTIFACTS))), max_size=20))
def test_artifacts_are_deduplicated_in_first_seen_order_and_survive_replay(picks):
    events = [ResponseCreated(response=base())]
    events += [ArtifactCreated(artifact=Artifact.model_validate(ARTIFACTS[i])) for i in picks]
    events.append(ResponseCompleted(response=base().model_copy(update={"status": "completed"})))
    state = replay(events)
    expected = [ARTIFACTS[i] for i in dict.fromkeys(picks)]
    assert [a.model_dump() for a in state.artifacts] == expected
    assert replay(parse_event(e.model_dump_json()) for e in events) == state


def test_a_repeat_updates_the_listed_artifact():
    events = [ResponseCreated(response=base()),
              ArtifactCreated(artifact=Artifact(type="trackio_dashboard", space_id="a/t", url="u")),
              ArtifactCreated(artifact=Artifact(type="trackio_dashboard", space_id="a/t", url="u", project="p"))]
    assert [a.model_dump() for a in replay(events).artifacts] == [
        {"type": "trackio_dashboard", "space_id": "a/t", "url": "u", "project": "p"}]


def test_compaction_elides_oldest_tool_results_first_and_gives_up_when_it_cannot_fit():
    history = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i in range(5):
        history += [{"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}"}]},
                    {"role": "tool", "tool_call_id": f"c{i}", "content": str(i) * 4000}]
    budget = estimate_tokens(history) - 1500
    out = compact(history, budget)
    assert out is not None and estimate_tokens(out) <= budget
    tools = [m["content"] for m in out if m["role"] == "tool"]
    assert "elided" in tools[0] and tools[-1] == "4" * 4000
    assert history[3]["content"] == "0" * 4000  # the input is not mutated
    assert compact([{"role": "user", "content": "x" * 40000}], 1000) is None
