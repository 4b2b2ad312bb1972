"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

It stops itself: a step limit, a guard against the same call repeated verbatim, and a
context guard — when the history outgrows the model's window, old tool results are
compacted (elided) first, and the run fails clearly (`context_length_exceeded`) if that
is not enough. Before every billable action it asks the budget gate; when the gate says no it yields
`Paused` and returns (the runtime resumes it later with a `Resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from .budget import BillableAction, NoBudget, Paused, Resume, SpendGate, denial_text
from .llm import ChatLLM, Completion, TextChunk, ToolCallRequest
from .steps import AgentError, Checkpoint, LlmCalled, Notice, Step, TextDelta, TextDone, TextStarted, ToolCalled, ToolReturned
from .tools.base import ToolContext, ToolSet

REPEAT_LIMIT = 3
DEFAULT_CONTEXT_TOKENS = 120_000
ELIDED_CHARS = 600


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A conservative estimate (~4 characters a token) — no tokenizer for every model."""
    return len(json.dumps(messages, ensure_ascii=False)) // 4


def compact(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]] | None:
    """Elide tool results, oldest first (the most recent last of all), until the history fits
    `budget` tokens. Returns the new history, or None when it cannot fit."""
    out = [dict(m) for m in messages]
    for i in [i for i, m in enumerate(out) if m.get("role") == "tool"]:
        if estimate_tokens(out) <= budget:
            return out
        content = str(out[i].get("content") or "")
        if len(content) > ELIDED_CHARS:
            out[i]["content"] = content[:ELIDED_CHARS] + f"\n…[{len(content)} chars elided to fit the context window]"
    return out if estimate_tokens(out) <= budget else None


class AgentLoop:
    def __init__(self, llm: ChatLLM, tools: ToolSet, max_steps: int, gate: SpendGate | None = None,
                 context_tokens: int = DEFAULT_CONTEXT_TOKENS) -> None:
        self._llm = llm
        self._tools = tools
        self._max_steps = max_steps
        self._gate: SpendGate = gate or NoBudget()
        self._context_tokens = context_tokens

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
        # What tools such as the research sub-agent may use: the same model, as the same caller.
        ctx.extras.update(llm=self._llm, model=model, context_tokens=self._context_tokens)
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
            fitted = self._fit_context(history)
            if fitted is not history:  # compacted
                history = fitted
                yield Checkpoint(messages=history)
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
                await self._tools.finish(ctx)
                for notice in notices:
                    yield notice
                notices.clear()
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

    def _fit_context(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The history, compacted when it outgrows the window (room is left for the answer
        and the tool definitions sent with every call)."""
        budget = int(self._context_tokens * 0.85) - len(json.dumps(self._tools.specs())) // 4
        if estimate_tokens(history) <= budget:
            return history
        compacted = compact(history, budget)
        if compacted is None:
            raise AgentError(
                "context_length_exceeded",
                f"The conversation (~{estimate_tokens(history)} tokens) no longer fits the model's context "
                f"window ({self._context_tokens} tokens) even after compacting old tool results; start a new "
                "session or shorten the input.",
            )
        return compacted

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
                output = None
                async for item in self._call_live(call.name, call.arguments, ctx, notices):
                    if isinstance(item, Notice):
                        yield item
                    else:
                        output = item
        for notice in notices:
            yield notice
        notices.clear()
        yield ToolReturned(call_id=call.call_id, name=call.name, output=output)
        history.append({"role": "tool", "tool_call_id": call.call_id, "content": output})

    async def _call_live(self, name: str, arguments: str, ctx: ToolContext,
                         notices: list[Notice]) -> AsyncIterator[Notice | str]:
        """Run one tool call, yielding its notices while it runs (an artifact or a job's
        progress reaches the stream at once, not when a long call returns), then its output.
        If the turn is cancelled meanwhile, the call is cancelled too (sandbox processes die)."""
        wake = asyncio.Event()
        ctx.notify = lambda n, p: (notices.append(Notice(name=n, payload=p)), wake.set())
        task = asyncio.ensure_future(self._tools.call(name, arguments, ctx))
        try:
            while not task.done():
                waiter = asyncio.ensure_future(wake.wait())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                wake.clear()
                while notices:
                    yield notices.pop(0)
            yield task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
