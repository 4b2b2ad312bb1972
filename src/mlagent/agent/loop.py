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
import dataclasses
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from .budget import BillableAction, NoBudget, Paused, Resume, SpendGate, denial_text
from .llm import ChatLLM, Completion, ReasoningChunk, TextChunk, ToolCallRequest
from .notices import Notice
from .options import TurnOptions, check_output
from .steps import (
    AgentError,
    Checkpoint,
    ClientCall,
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
from .tools.base import ToolContext, ToolSet
from .tools.delegate import DelegateTool

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
        self, model: str, messages: list[dict[str, Any]], ctx: ToolContext, resume: Resume | None = None,
        options: TurnOptions | None = None,
    ) -> AsyncGenerator[Step | Paused, None]:
        """Drive the conversation from `messages` (not mutated) to a final answer, or to
        calls of the client's own tools (then it yields `ClientToolCalls` and stops).

        With `resume`, first settle the batch a pause left pending: run the approved
        tool calls (or answer them with the denial), or make the approved model call.
        """
        opts = options or TurnOptions()
        history = list(messages)
        seen_calls: dict[str, int] = {}
        notices: list[Notice] = []
        ctx.notify = notices.append
        # What tools such as the research sub-agent may use: the same model, as the same caller.
        ctx.extras.update(llm=self._llm, model=model, context_tokens=self._context_tokens)
        llm_approved = False
        tool_calls_made = 0
        first_call = True
        if resume is not None and resume.batch == "tools":
            if resume.approve:
                budget = await self._gate.admit(resume.calls, approved=True)
                if budget is not None:
                    yield Paused(batch="tools", actions=resume.calls, budget=budget)
                    return
            calls = [ToolCallRequest(call_id=a.call_id or "", name=a.name, arguments=a.arguments or "{}")
                     for a in resume.calls]
            denied = None if resume.approve else denial_text(resume.feedback)
            async for step in self._run_calls(calls, ctx, history, seen_calls, notices, denied, opts):
                yield step
            yield Checkpoint(messages=history)
            first_call = False
            waiting = _unanswered_client_calls(history, opts.client_names)
            if waiting:
                yield ClientToolCalls(calls=waiting)
                return
        elif resume is not None:
            llm_approved = resume.approve
        for _ in range(self._max_steps):
            fitted = self._fit_context(history, opts)
            if fitted is not history:  # compacted
                history = fitted
                yield Checkpoint(messages=history)
            await self._gate.before_llm()
            specs = self._tools.specs() + opts.client_tools
            if opts.max_tool_calls is not None and tool_calls_made >= opts.max_tool_calls:
                specs = []  # OpenAI's max_tool_calls: further calls are not offered
            action = self._gate.estimate_llm(model, history, specs)
            budget = await self._gate.admit([action], approved=llm_approved)
            llm_approved = False
            if budget is not None:
                yield Paused(batch="inference", actions=[action], budget=budget)
                return
            choice = opts.tool_choice if (first_call or opts.tool_choice == "none") else None
            first_call = False
            completion: Completion | None = None
            started = reasoning = False
            async for piece in self._llm.stream(model, history, specs, opts.model, choice):
                if isinstance(piece, ReasoningChunk):
                    if not reasoning:
                        reasoning = True
                        yield ReasoningStarted()
                    yield ReasoningDelta(delta=piece.text)
                elif isinstance(piece, TextChunk):
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
            if reasoning:
                yield ReasoningDone(text=completion.reasoning)
            if started:
                yield TextDone(text=completion.text)
            history.append(completion.assistant_message())
            yield Checkpoint(messages=history)
            if not completion.tool_calls:
                check_output(completion.text, opts.output_format)
                await self._tools.finish(ctx)
                for notice in notices:
                    yield notice
                notices.clear()
                return
            tool_calls_made += len(completion.tool_calls)
            client_names = opts.client_names
            server_calls = [c for c in completion.tool_calls if c.name not in client_names]
            actions = [self._tool_action(call) for call in server_calls]
            if any(a.estimate_usd > 0 for a in actions):
                budget = await self._gate.admit(actions)
                if budget is not None:
                    for call in server_calls:
                        yield ToolCalled(call_id=call.call_id, name=call.name, arguments=call.arguments)
                    yield Paused(batch="tools", actions=actions, budget=budget)
                    return
            for call in server_calls:
                yield ToolCalled(call_id=call.call_id, name=call.name, arguments=call.arguments)
            async for step in self._run_calls(server_calls, ctx, history, seen_calls, notices, None, opts):
                yield step
            yield Checkpoint(messages=history)
            waiting = [ClientCall(call_id=c.call_id, name=c.name, arguments=c.arguments)
                       for c in completion.tool_calls if c.name in client_names]
            if waiting:
                yield ClientToolCalls(calls=waiting)
                return
        raise AgentError("max_steps_exceeded", f"The agent stopped after {self._max_steps} steps without a final answer.")

    async def _run_calls(
        self, calls: list[ToolCallRequest], ctx: ToolContext, history: list[dict[str, Any]],
        seen_calls: dict[str, int], notices: list[Notice], denied: str | None, opts: TurnOptions,
    ) -> AsyncIterator[Step]:
        """Run one step's tool calls: together when the request allows parallel calls and
        every one of them is a read-only tool (they cannot interfere; a delegation is not one,
        its peer may write), else one by one."""
        parallel = (opts.model.parallel_tool_calls is not False and denied is None and len(calls) > 1
                    and all((t := self._tools.get(c.name)) is not None and t.read_only
                            and t.name != DelegateTool.name for c in calls))
        if not parallel:
            for call in calls:
                async for step in self._call(call, ctx, history, seen_calls, notices, denied):
                    yield step
            return
        results = await asyncio.gather(*(self._call_quietly(call, ctx, seen_calls) for call in calls))
        for call, (output, own_notices, duration) in zip(calls, results, strict=True):
            for notice in own_notices:
                yield notice
            yield ToolReturned(call_id=call.call_id, name=call.name, output=output, duration_ms=duration)
            history.append({"role": "tool", "tool_call_id": call.call_id, "content": output})

    async def _call_quietly(self, call: ToolCallRequest, ctx: ToolContext,
                            seen_calls: dict[str, int]) -> tuple[str, list[Notice], float]:
        """One call of a parallel batch, on its own context: its notices are kept, in order,
        for when the batch is reported."""
        own: list[Notice] = []
        mine = dataclasses.replace(ctx, call_id=call.call_id, notify=own.append)
        started = time.perf_counter()
        output = self._repeated(call, seen_calls)
        if output is None:
            output = await self._tools.call(call.name, call.arguments, mine)
        return output, own, round((time.perf_counter() - started) * 1000, 3)

    def _repeated(self, call: ToolCallRequest, seen_calls: dict[str, int]) -> str | None:
        key = json.dumps([call.name, call.arguments])
        seen_calls[key] = seen_calls.get(key, 0) + 1
        if seen_calls[key] > REPEAT_LIMIT:
            return (f"Error: this exact call to {call.name} was already made {REPEAT_LIMIT} times with the "
                    "same arguments; use the results you have or try something different.")
        return None

    def _fit_context(self, history: list[dict[str, Any]], opts: TurnOptions) -> list[dict[str, Any]]:
        """The history, compacted when it outgrows the window (room is left for the answer
        and the tool definitions sent with every call); with truncation "disabled", never."""
        budget = (int(self._context_tokens * 0.85)
                  - len(json.dumps(self._tools.specs() + opts.client_tools)) // 4)
        if estimate_tokens(history) <= budget:
            return history
        compacted = compact(history, budget) if opts.compact else None
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
        estimate, kind = 0.0, tool.cost_kind if tool is not None else "tool"
        if tool is not None:
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
        started = time.perf_counter()
        output: str
        if denied is not None:
            output = denied
        elif (repeated := self._repeated(call, seen_calls)) is not None:
            output = repeated
        else:
            output = ""  # replaced by the call's result (`_call_live` always yields one)
            ctx.call_id = call.call_id
            async for item in self._call_live(call.name, call.arguments, ctx, notices):
                if isinstance(item, Notice):
                    yield item
                else:
                    output = item
        for notice in notices:
            yield notice
        notices.clear()
        duration = round((time.perf_counter() - started) * 1000, 3)
        yield ToolReturned(call_id=call.call_id, name=call.name, output=output, duration_ms=duration)
        history.append({"role": "tool", "tool_call_id": call.call_id, "content": output})

    async def _call_live(self, name: str, arguments: str, ctx: ToolContext,
                         notices: list[Notice]) -> AsyncIterator[Notice | str]:
        """Run one tool call, yielding its notices while it runs (an artifact or a job's
        progress reaches the stream at once, not when a long call returns), then its output.
        If the turn is cancelled meanwhile, the call is cancelled too (sandbox processes die)."""
        wake = asyncio.Event()

        def notify(notice: Notice) -> None:
            notices.append(notice)
            wake.set()

        ctx.notify = notify
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


def _unanswered_client_calls(history: list[dict[str, Any]], client_names: set[str]) -> list[ClientCall]:
    """The client's tool calls of the last assistant message that have no result yet."""
    answered = {m.get("tool_call_id") for m in history if m.get("role") == "tool"}
    for msg in reversed(history):
        if msg.get("role") == "assistant":
            return [ClientCall(call_id=c["id"], name=c["function"]["name"], arguments=c["function"]["arguments"])
                    for c in msg.get("tool_calls") or () if c["id"] not in answered
                    and c["function"]["name"] in client_names]
    return []
