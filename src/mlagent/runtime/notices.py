"""Where a tool's notices go: the one place they are told apart (for a turn and for a
delegated peer alike). An artifact, a plan or a job's progress becomes a response event;
a model call the tool made itself enters the turn's call log (and is charged); a cost
replaces the estimate of the call it names, or of the running call once it returns."""

from __future__ import annotations

from typing import Protocol

from ..agent.notices import ArtifactNotice, CostNotice, JobStatusNotice, LlmCallNotice, Notice, PlanNotice
from ..agent.steps import LlmCalled
from ..events.response import Artifact
from ..events.types import ArtifactCreated, Event, ForwardedEvent, PlanUpdated


class NoticeSink(Protocol):
    """The turn's event stream, call log and charges."""

    async def emit(self, event: Event | ForwardedEvent) -> None: ...

    async def record_llm(self, step: LlmCalled) -> None: ...

    async def settle(self, call_id: str, actual_usd: float) -> None: ...


class NoticeRouter:
    """Routes the notices of one agent loop. For a peer (`peer` set) its plan and job
    progress stay its own (they are not the turn's), its model calls are labelled with it."""

    def __init__(self, sink: NoticeSink, peer: str | None = None) -> None:
        self._sink = sink
        self._peer = peer
        self._reported: float | None = None

    async def route(self, notice: Notice) -> None:
        match notice:
            case CostNotice(usd=usd, call_id=call_id):
                if call_id:  # an earlier call's (an HF Job that ended)
                    await self._sink.settle(call_id, max(0.0, usd))
                else:  # the running call's, settled with its result (`take_reported`)
                    self._reported = max(0.0, usd)
            case LlmCallNotice():
                await self._sink.record_llm(LlmCalled(
                    model=notice.model, agent=notice.agent or self._peer, input_tokens=notice.input_tokens,
                    output_tokens=notice.output_tokens, latency_ms=notice.latency_ms))
            case ArtifactNotice():
                await self._sink.emit(ArtifactCreated(artifact=Artifact.model_validate(notice.fields())))
            case PlanNotice(steps=steps):
                if self._peer is None:
                    await self._sink.emit(PlanUpdated(steps=steps))
            case JobStatusNotice():
                if self._peer is None:
                    await self._sink.emit(ForwardedEvent(type="response.job_status",
                                                         **notice.model_dump(exclude={"kind"})))

    def take_reported(self) -> float | None:
        """The running call's reported cost (once), when its result comes back."""
        usd, self._reported = self._reported, None
        return usd
