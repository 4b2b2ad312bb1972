"""A tool's typed notices reach the turn as before: the same events, byte for byte, as the
string-named notices they replaced; costs settle the call they name; a peer's own plan and
job progress stay its own."""

from mlagent.agent.notices import ArtifactNotice, CostNotice, JobStatusNotice, LlmCallNotice, PlanNotice
from mlagent.agent.steps import LlmCalled
from mlagent.events.response import Artifact
from mlagent.events.types import ArtifactCreated, ForwardedEvent, PlanUpdated
from mlagent.runtime.notices import NoticeRouter


class Sink:
    def __init__(self) -> None:
        self.events: list = []
        self.calls: list[LlmCalled] = []
        self.settled: list[tuple[str, float]] = []

    async def emit(self, event) -> None:
        self.events.append(event)

    async def record_llm(self, step: LlmCalled) -> None:
        self.calls.append(step)

    async def settle(self, call_id: str, actual_usd: float) -> None:
        self.settled.append((call_id, actual_usd))


async def test_artifacts_plans_and_job_progress_become_the_events_they_were():
    sink = Sink()
    router = NoticeRouter(sink)
    await router.route(ArtifactNotice(type="model", repo_id="u/m", url="https://hf.co/u/m"))
    await router.route(ArtifactNotice(type="deployment", id="d1", url="http://x/predict", model_id="m1",
                                      status="pending", status_url="http://x/status"))
    await router.route(PlanNotice(steps=[{"step": "train", "status": "in_progress"}]))
    await router.route(JobStatusNotice(job_id="j1", stage="RUNNING", message=None, url="https://hf.co/jobs/u/j1"))
    # What the string-named notices produced (the wire format clients read).
    before = [
        ArtifactCreated(artifact=Artifact.model_validate({"type": "model", "repo_id": "u/m", "url": "https://hf.co/u/m"})),
        ArtifactCreated(artifact=Artifact.model_validate({
            "type": "deployment", "id": "d1", "url": "http://x/predict", "model_id": "m1", "status": "pending",
            "status_url": "http://x/status"})),
        PlanUpdated(steps=[{"step": "train", "status": "in_progress"}]),
        ForwardedEvent(type="response.job_status", job_id="j1", stage="RUNNING", message=None,
                       url="https://hf.co/jobs/u/j1"),
    ]
    assert [e.model_dump_json() for e in sink.events] == [e.model_dump_json() for e in before]
    assert '"artifact":{"type":"model","repo_id":"u/m","url":"https://hf.co/u/m"}' in sink.events[0].model_dump_json()


async def test_a_cost_settles_the_call_it_names_or_waits_for_the_running_calls_result():
    sink = Sink()
    router = NoticeRouter(sink)
    await router.route(CostNotice(usd=0.25, call_id="call_job"))  # an HF Job that ended later
    assert sink.settled == [("call_job", 0.25)]
    await router.route(CostNotice(usd=-1.0))  # the running call's: never below zero
    assert sink.settled == [("call_job", 0.25)] and sink.events == []
    assert router.take_reported() == 0.0
    assert router.take_reported() is None  # taken once


async def test_a_tools_model_call_is_recorded_and_a_peers_is_labelled_with_the_peer():
    sink = Sink()
    await NoticeRouter(sink).route(LlmCallNotice(model="m", input_tokens=3, output_tokens=4, latency_ms=5.0))
    await NoticeRouter(sink, peer="coder").route(LlmCallNotice(model="m", input_tokens=1, output_tokens=2,
                                                               latency_ms=1.0))
    await NoticeRouter(sink, peer="coder").route(LlmCallNotice(model="m", input_tokens=1, output_tokens=2,
                                                               latency_ms=1.0, agent="research"))
    assert [(c.agent, c.input_tokens, c.output_tokens) for c in sink.calls] == [
        (None, 3, 4), ("coder", 1, 2), ("research", 1, 2)]


async def test_a_peers_plan_and_job_progress_stay_its_own_but_its_artifacts_are_the_turns():
    sink = Sink()
    router = NoticeRouter(sink, peer="coder")
    await router.route(PlanNotice(steps=[{"step": "x", "status": "pending"}]))
    await router.route(JobStatusNotice(job_id="j1", stage="RUNNING", message=None, url="u"))
    assert sink.events == []
    await router.route(ArtifactNotice(type="hf_job", id="j1", url="u"))
    assert [e.type for e in sink.events] == ["response.artifact.created"]
