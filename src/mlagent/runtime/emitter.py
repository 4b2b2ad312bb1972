"""Turns the agent's steps into OpenAI-style response events (items, parts, deltas)."""

from __future__ import annotations

from ..agent.steps import (
    Checkpoint,
    ClientToolCalls,
    LlmCalled,
    ReasoningDelta,
    ReasoningDone,
    ReasoningStarted,
    Step,
    TextDelta,
    TextDone,
    TextStarted,
    ToolCalled,
    ToolReturned,
)
from ..events.response import (
    FunctionCallItem,
    McpCallItem,
    MessageItem,
    OutputText,
    ReasoningItem,
    ReasoningText,
    ResponseObject,
)
from ..events.types import (
    ContentPartAdded,
    ContentPartDone,
    LlmCall,
    McpCallCompleted,
    McpCallInProgress,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    ReasoningTextDelta,
    ReasoningTextDone,
    ToolLog,
)
from .ids import new_id
from .writer import EventWriter

OUTPUT_LIMIT_BYTES = 4096


def truncate_output(text: str, limit: int = OUTPUT_LIMIT_BYTES) -> str:
    """Cut `text` to `limit` UTF-8 bytes, saying so and where the full text is."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    head = raw[:limit].decode(errors="ignore")
    return f"{head}\n…[truncated: {len(raw)} bytes in all; the full text is in the response.tool_log event]"


class TurnEmitter:
    def __init__(self, writer: EventWriter) -> None:
        self._writer = writer
        self._message: MessageItem | None = None
        self._message_index = -1
        self._reasoning: ReasoningItem | None = None
        self._reasoning_index = -1

    @property
    def _next_index(self) -> int:
        return len(self._writer.state.output)

    async def handle(self, step: Step) -> None:
        """Write a step's events; a tool's notices are routed elsewhere (`runtime/notices.py`)."""
        w = self._writer
        if isinstance(step, TextStarted):
            self._message = MessageItem(id=new_id("msg"))
            self._message_index = self._next_index
            await w.emit(OutputItemAdded(output_index=self._message_index, item=self._message))
            await w.emit(
                ContentPartAdded(item_id=self._message.id, output_index=self._message_index, content_index=0, part=OutputText())
            )
        elif isinstance(step, TextDelta) and self._message is not None:
            await w.emit(
                OutputTextDelta(item_id=self._message.id, output_index=self._message_index, content_index=0, delta=step.delta)
            )
        elif isinstance(step, TextDone) and self._message is not None:
            await self._finish_message(step.text, "completed")
        elif isinstance(step, ReasoningStarted):
            self._reasoning = ReasoningItem(id=new_id("rs"))
            self._reasoning_index = self._next_index
            await w.emit(OutputItemAdded(output_index=self._reasoning_index, item=self._reasoning))
        elif isinstance(step, ReasoningDelta) and self._reasoning is not None:
            await w.emit(ReasoningTextDelta(item_id=self._reasoning.id, output_index=self._reasoning_index,
                                            delta=step.delta))
        elif isinstance(step, ReasoningDone) and self._reasoning is not None:
            await self._finish_reasoning(step.text, "completed")
        elif isinstance(step, ToolCalled):
            # One of the agent's own tools: reported the way OpenAI reports a hosted tool run.
            item = McpCallItem(id=new_id("mcp"), call_id=step.call_id, name=step.name, arguments=step.arguments)
            index = self._next_index
            await w.emit(OutputItemAdded(output_index=index, item=item))
            await w.emit(McpCallInProgress(item_id=item.id, output_index=index))
        elif isinstance(step, ToolReturned):
            await w.emit(ToolLog(call_id=step.call_id, name=step.name, text=step.output))
            index, open_item = _open_call(w.state, step.call_id)
            if open_item is None:  # not announced (cannot happen in a well-formed run): announce it now
                open_item = McpCallItem(id=new_id("mcp"), call_id=step.call_id, name=step.name, arguments="{}")
                index = self._next_index
                await w.emit(OutputItemAdded(output_index=index, item=open_item))
            done = open_item.model_copy(update={"output": truncate_output(step.output), "status": "completed",
                                                "duration_ms": step.duration_ms})
            await w.emit(McpCallCompleted(item_id=open_item.id, output_index=index))
            await w.emit(OutputItemDone(output_index=index, item=done))
        elif isinstance(step, ClientToolCalls):
            for call in step.calls:
                fc = FunctionCallItem(id=new_id("fc"), call_id=call.call_id, name=call.name, arguments=call.arguments)
                index = self._next_index
                await w.emit(OutputItemAdded(output_index=index, item=fc.model_copy(update={"status": "in_progress"})))
                await w.emit(OutputItemDone(output_index=index, item=fc))
        elif isinstance(step, LlmCalled):
            await w.emit(LlmCall(**step.model_dump(exclude={"kind"})))
        elif isinstance(step, Checkpoint):
            pass  # persisted by the turn runner

    async def _finish_message(self, text: str, status: str) -> None:
        assert self._message is not None
        w, mid, idx = self._writer, self._message.id, self._message_index
        part = OutputText(text=text)
        await w.emit(OutputTextDone(item_id=mid, output_index=idx, content_index=0, text=text))
        await w.emit(ContentPartDone(item_id=mid, output_index=idx, content_index=0, part=part))
        await w.emit(OutputItemDone(output_index=idx, item=self._message.model_copy(update={"status": status, "content": [part]})))
        self._message = None

    async def _finish_reasoning(self, text: str, status: str) -> None:
        assert self._reasoning is not None
        w, rid, idx = self._writer, self._reasoning.id, self._reasoning_index
        await w.emit(ReasoningTextDone(item_id=rid, output_index=idx, text=text))
        await w.emit(OutputItemDone(output_index=idx, item=self._reasoning.model_copy(
            update={"status": status, "content": [ReasoningText(text=text)]})))
        self._reasoning = None

    async def interrupt(self) -> None:
        """Close a message, reasoning or tool run cut off mid-stream (cancel, failure) as `incomplete`."""
        if self._reasoning is not None:
            item = self._writer.state.output[self._reasoning_index]
            text = "".join(p.text for p in item.content) if isinstance(item, ReasoningItem) else ""
            await self._finish_reasoning(text, "incomplete")
        if self._message is not None:
            item = self._writer.state.output[self._message_index]
            text = "".join(p.text for p in item.content) if isinstance(item, MessageItem) else ""
            await self._finish_message(text, "incomplete")
        await close_open_items(self._writer)


def closing_events(state: ResponseObject) -> list[OutputItemDone]:
    """An `incomplete` end for every item still `in_progress` (a tool run cut off, a message)."""
    return [OutputItemDone(output_index=index, item=item.model_copy(update={"status": "incomplete"}))
            for index, item in enumerate(state.output)
            if isinstance(item, MessageItem | McpCallItem | ReasoningItem) and item.status == "in_progress"]


async def close_open_items(writer: EventWriter) -> None:
    for event in closing_events(writer.state):
        await writer.emit(event)


def _open_call(state: ResponseObject, call_id: str) -> tuple[int, McpCallItem | None]:
    for index, item in enumerate(state.output):
        if isinstance(item, McpCallItem) and item.call_id == call_id and item.status == "in_progress":
            return index, item
    return -1, None
