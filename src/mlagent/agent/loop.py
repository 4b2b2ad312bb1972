"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

It stops itself: a step limit, and a guard against the same call repeated verbatim.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .llm import ChatLLM, Completion, TextChunk
from .steps import AgentError, Checkpoint, LlmCalled, Notice, Step, TextDelta, TextDone, TextStarted, ToolCalled, ToolReturned
from .tools.base import ToolContext, ToolSet

REPEAT_LIMIT = 3


class AgentLoop:
    def __init__(self, llm: ChatLLM, tools: ToolSet, max_steps: int) -> None:
        self._llm = llm
        self._tools = tools
        self._max_steps = max_steps

    async def run(self, model: str, messages: list[dict[str, Any]], ctx: ToolContext) -> AsyncIterator[Step]:
        """Drive the conversation from `messages` (not mutated) to a final answer."""
        history = list(messages)
        seen_calls: dict[str, int] = {}
        notices: list[Notice] = []
        ctx.notify = lambda name, payload: notices.append(Notice(name=name, payload=payload))
        for _ in range(self._max_steps):
            completion: Completion | None = None
            started = False
            async for piece in self._llm.stream(model, history, self._tools.specs()):
                if isinstance(piece, TextChunk):
                    if not started:
                        started = True
                        yield TextStarted()
                    yield TextDelta(delta=piece.text)
                else:
                    completion = piece
            assert completion is not None
            yield LlmCalled(
                model=model,
                latency_ms=round(completion.latency_ms, 3),
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                finish_reason=completion.finish_reason,
            )
            if started:
                yield TextDone(text=completion.text)
            history.append(completion.assistant_message())
            yield Checkpoint(messages=history)
            if not completion.tool_calls:
                return
            for call in completion.tool_calls:
                yield ToolCalled(call_id=call.call_id, name=call.name, arguments=call.arguments)
                key = json.dumps([call.name, call.arguments])
                seen_calls[key] = seen_calls.get(key, 0) + 1
                if seen_calls[key] > REPEAT_LIMIT:
                    output = (
                        f"Error: this exact call to {call.name} was already made {REPEAT_LIMIT} times with the "
                        "same arguments; use the results you have or try something different."
                    )
                else:
                    output = await self._tools.call(call.name, call.arguments, ctx)
                for notice in notices:
                    yield notice
                notices.clear()
                yield ToolReturned(call_id=call.call_id, name=call.name, output=output)
                history.append({"role": "tool", "tool_call_id": call.call_id, "content": output})
            yield Checkpoint(messages=history)
        raise AgentError("max_steps_exceeded", f"The agent stopped after {self._max_steps} steps without a final answer.")
