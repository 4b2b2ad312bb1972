"""The one reducer: `apply(state, event) -> state`, the same code live and on replay."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .response import (
    Artifact,
    MessageItem,
    OutputText,
    PendingApproval,
    ReasoningItem,
    ReasoningText,
    ResponseObject,
    Usage,
)
from .types import (
    LIFECYCLE_TYPES,
    ApprovalRequired,
    ArtifactCreated,
    ContentPartAdded,
    CostUpdated,
    Event,
    ForwardedEvent,
    LlmCall,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ReasoningTextDelta,
    ReasoningTextDone,
)


def apply(state: ResponseObject | None, event: Event | ForwardedEvent) -> ResponseObject:
    """Return the response after `event`. Never mutates `state`.

    Lifecycle events carry a snapshot; the snapshot's status, error, details, usage and
    metadata win, while `output` stays the one accumulated from item events so that a
    snapshot can never disagree with the items before it.
    """
    if isinstance(event, LIFECYCLE_TYPES):
        snap = event.response
        if state is None:
            return snap.model_copy(deep=True)
        return snap.model_copy(update={"output": state.output, "usage": state.usage or snap.usage,
                                       "artifacts": _merge_artifacts(state.artifacts, snap.artifacts)}, deep=True)
    if state is None:
        raise ValueError(f"event {event.type} before response.created")
    if isinstance(event, OutputItemAdded | OutputItemDone):
        output = list(state.output)
        item = event.item.model_copy(deep=True)
        if event.output_index < len(output):
            output[event.output_index] = item
        else:
            output.append(item)
        return state.model_copy(update={"output": output})
    if isinstance(event, ContentPartAdded):
        return _edit_message(state, event.output_index, event.content_index, lambda part: event.part.model_copy())
    if isinstance(event, OutputTextDelta):
        return _edit_message(
            state,
            event.output_index,
            event.content_index,
            lambda part: part.model_copy(update={"text": part.text + event.delta}),
        )
    if isinstance(event, OutputTextDone):
        return _edit_message(
            state, event.output_index, event.content_index, lambda part: part.model_copy(update={"text": event.text})
        )
    if isinstance(event, ReasoningTextDelta | ReasoningTextDone):
        output = list(state.output)
        item = output[event.output_index]
        if not isinstance(item, ReasoningItem):
            raise ValueError(f"output[{event.output_index}] is not a reasoning item")
        content = list(item.content)
        while len(content) <= event.content_index:
            content.append(ReasoningText())
        old = content[event.content_index]
        text = old.text + event.delta if isinstance(event, ReasoningTextDelta) else event.text
        content[event.content_index] = ReasoningText(text=text)
        output[event.output_index] = item.model_copy(update={"content": content})
        return state.model_copy(update={"output": output})
    if isinstance(event, LlmCall):
        usage = state.usage or Usage()
        usage = usage.model_copy(
            update={
                "input_tokens": usage.input_tokens + event.input_tokens,
                "output_tokens": usage.output_tokens + event.output_tokens,
                "total_tokens": usage.total_tokens + event.input_tokens + event.output_tokens,
                "llm_calls": usage.llm_calls + 1,
            }
        )
        return state.model_copy(update={"usage": usage})
    if isinstance(event, ArtifactCreated):
        return state.model_copy(update={"artifacts": _merge_artifacts(state.artifacts, [event.artifact])})
    if isinstance(event, CostUpdated):
        usage = (state.usage or Usage()).model_copy(update={"cost": event.cost.model_copy()})
        return state.model_copy(update={"usage": usage})
    if isinstance(event, ApprovalRequired):
        pending = PendingApproval(batch=event.batch, actions=event.actions, budget=event.budget)
        return state.model_copy(update={"pending_approval": pending.model_copy(deep=True)})
    return state


ARTIFACT_KEYS = ("id", "repo_id", "space_id", "slug")


def artifact_key(artifact: Artifact) -> tuple[str, str]:
    """Identity of an artifact: its type and the first of id / repo_id / space_id / slug."""
    data = artifact.model_dump()
    for key in ARTIFACT_KEYS:
        if data.get(key):
            return artifact.type, str(data[key])
    return artifact.type, str(data.get("url", ""))


def _merge_artifacts(current: list[Artifact], new: list[Artifact]) -> list[Artifact]:
    """Append unseen artifacts; a repeat updates the listed one in place (first position kept)."""
    merged = list(current)
    index = {artifact_key(a): i for i, a in enumerate(merged)}
    for artifact in new:
        key = artifact_key(artifact)
        if key in index:
            old = merged[index[key]]
            merged[index[key]] = Artifact.model_validate({**old.model_dump(), **artifact.model_dump()})
        else:
            index[key] = len(merged)
            merged.append(artifact.model_copy(deep=True))
    return merged


def _edit_message(state: ResponseObject, output_index: int, content_index: int,
                  edit: Callable[[OutputText], OutputText]) -> ResponseObject:
    output = list(state.output)
    item = output[output_index]
    if not isinstance(item, MessageItem):
        raise ValueError(f"output[{output_index}] is not a message")
    content = list(item.content)
    while len(content) <= content_index:
        content.append(OutputText())
    content[content_index] = edit(content[content_index])
    output[output_index] = item.model_copy(update={"content": content})
    return state.model_copy(update={"output": output})


def replay(events: Iterable[Event], state: ResponseObject | None = None) -> ResponseObject | None:
    for event in events:
        state = apply(state, event)
    return state
