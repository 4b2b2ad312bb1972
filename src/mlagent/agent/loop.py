"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

It stops itself: a step limit, and a guard against the same call repeated verbatim.
Before every billable action it asks the budget gate; when the gate says no it yields
`Paused` and returns (the runtime resumes it later with a `Resume`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from .budget import BillableAction, NoBudget, Paused, Resume, SpendGate, denial_text
from .llm import ChatLLM, Completion, TextChunk, ToolCallRequest
from .steps import AgentError, Checkpoint, LlmCalled, Notice, Step, TextDelta, TextDone, TextStarted, ToolCalled, ToolReturned
from .tools.base import ToolContext, ToolSet

REPEAT_LIMIT = 3


class AgentLoop:
    def __init__(self, llm: ChatLLM, tools: ToolSet, max_steps: int, gate: SpendGate | None = None) -> None:
        self._llm = llm
        self._tools = tools
        self._max_steps = max_steps
        self._gate: SpendGate = gate or NoBudget()

    async def run(
        self, model: str, messages: list[dict[str, Any]], ctx: ToolContext, resume: Resume | None = None
    ) -> AsyncIterator[Step | Paused]:
        """Drive the conversation from `messages` (not mutated) to a final answer.

        With `resume`, first settle the batch a pause left pending: run the approved
        tool calls (or answer them with the denial), or make the approved model call.
        """
        history = list(messages)
        seen_calls: dict[str, int] = {}
        notices: list[Notice] = []
        ctx.notify = lambda name, payload: notices.append(Notice(name=name, payload=payload))
        llm_approved = False
        if resume is not None and resume.batch == "tools":
            if resume.approve:
                budget = await self._gate.admit(resume.calls, approved=True)
                if budget is not None:
                    yield Paused(batch="tools", actions=resume.calls, budget=budget)
                    return
            for action in resume.calls:
                call = ToolCallRequest(call_id=action.call_id or "", name=action.name, arguments=action.arguments or "{}")
                denied = None if resume.approve else denial_text(resume.feedback)
                async for step in self._call(call, ctx, history, seen_calls, notices, denied):
                    yield step
            yield Checkpoint(messages=history)
        elif resume is not None:
            llm_approved = resume.approve
        for _ in range(self._max_steps):
            await self._gate.before_llm()
            specs = self._tools.specs()
            action = self._gate.estimate_llm(model, history, specs)
            budget = await self._gate.admit([action], approved=llm_approved)
            llm_approved = False
            if budget is not None:
                yield Paused(batch="inference", actions=[action], budget=budget)
                return
            completion: Completion | None = None
            started = False
            async for piece in self._llm.stream(model, history, specs):
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
            actions = [self._tool_action(call) for call in completion.tool_calls]
            if any(a.estimate_usd > 0 for a in actions):
                budget = await self._gate.admit(actions)
                if budget is not None:
                    for call in completion.tool_calls:
                        yield ToolCalled(call_id=call.call_id, name=call.name, arguments=call.arguments)
                    yield Paused(batch="tools", actions=actions, budget=budget)
                    return
            for call in completion.tool_calls:
                yield ToolCalled(call_id=call.call_id, name=call.name, arguments=call.arguments)
                async for step in self._call(call, ctx, history, seen_calls, notices, None):
                    yield step
            yield Checkpoint(messages=history)
        raise AgentError("max_steps_exceeded", f"The agent stopped after {self._max_steps} steps without a final answer.")

    def _tool_action(self, call: ToolCallRequest) -> BillableAction:
        tool = self._tools.get(call.name)
        estimate, kind = 0.0, "tool"
        if tool is not None:
            kind = tool.cost_kind
            try:
                args = json.loads(call.arguments or "{}")
                estimate = float(tool.estimate_cost_usd(args)) if isinstance(args, dict) else 0.0
            except (ValueError, TypeError, KeyError):
                estimate = 0.0
        return BillableAction(kind=kind, name=call.name, call_id=call.call_id, arguments=call.arguments,
                              estimate_usd=max(0.0, estimate))

    async def _call(
        self, call: ToolCallRequest, ctx: ToolContext, history: list[dict[str, Any]], seen_calls: dict[str, int],
        notices: list[Notice], denied: str | None,
    ) -> AsyncIterator[Step]:
        """Run one tool call (or answer it with `denied`) and record its result."""
        key = json.dumps([call.name, call.arguments])
        if denied is not None:
            output = denied
        else:
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
