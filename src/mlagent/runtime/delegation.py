"""Runs a peer agent for the `delegate` tool: a nested agent loop inside the calling turn,
with the peer's prompt, tools and model, on the turn's LLM client. Its LLM calls are
recorded on the turn (so usage and cost count them); its text comes back as the tool
result; the artifacts its tools announce join the turn's. It cannot delegate further, and
cancelling the turn cancels it.

The peer runs under the turn's own budget gate: its model calls and costed tool calls are
checked against the session's `max_cost_usd` and the thread's token budget like the
caller's. A nested loop cannot pause for approval (the pause belongs to the turn), so when
the gate says no the peer stops and its tool result says the budget ran out; the caller's
next model call then meets the same gate and the turn pauses (`approval_required`) or
fails (token budget) as usual."""

from __future__ import annotations

from ..agent.budget import Paused, SpendGate
from ..agent.llm import ChatLLM
from ..agent.loop import AgentLoop
from ..agent.notices import Notice
from ..agent.steps import AgentError, LlmCalled, TextDone, ToolReturned
from ..agent.tools.base import ToolContext, ToolSet
from ..agent.tools.delegate import Delegate, DelegateTool
from ..organism.roster import AgentProfile, AgentRoster
from .notices import NoticeRouter, NoticeSink

TOKEN_BUDGET_EXCEEDED = "thread_token_budget_exceeded"


def make_delegate(agents: AgentRoster, caller: AgentProfile, llm: ChatLLM, toolset: ToolSet, ctx: ToolContext,
                  recorder: NoticeSink, default_model: str, max_steps: int,
                  gate: SpendGate | None = None) -> Delegate:
    async def delegate(peer: str, task: str) -> str:
        if peer not in caller.peers:
            return f"Error: {peer!r} is not one of your peers ({', '.join(caller.peers) or 'none'})."
        profile = agents.profile(peer)
        if profile is None:
            return f"Error: the peer agent {peer!r} is not configured on this server any more."
        tools = toolset.only(t for t in profile.tools if t != DelegateTool.name)
        sub_ctx = ToolContext(account=ctx.account, session_id=ctx.session_id, response_id=ctx.response_id,
                              token=ctx.token)
        messages = [{"role": "system", "content": profile.system_prompt}, {"role": "user", "content": task}]
        answer, notices = "", NoticeRouter(recorder, peer=peer)
        try:
            async for step in AgentLoop(llm, tools, max_steps, gate=gate).run(profile.model or default_model,
                                                                              messages, sub_ctx):
                if isinstance(step, Paused):
                    return budget_ran_out(peer, step, answer)
                if isinstance(step, Notice):  # its artifacts (a deployment, …) and tools' model calls are the turn's
                    await notices.route(step)
                elif isinstance(step, LlmCalled):
                    await recorder.record_llm(step.model_copy(update={"agent": peer}))
                elif isinstance(step, ToolReturned) and (usd := notices.take_reported()) is not None:
                    await recorder.settle(step.call_id, usd)
                elif isinstance(step, TextDone):
                    answer = step.text
        except AgentError as exc:
            if exc.code != TOKEN_BUDGET_EXCEEDED:
                raise
            return f"({peer} stopped: {exc.message}){_partial(answer)}"
        return answer or f"({peer} finished without an answer.)"

    return delegate


def budget_ran_out(peer: str, paused: Paused, answer: str) -> str:
    """The tool result of a peer the budget gate stopped (it cannot wait for an approval)."""
    b = paused.budget
    what = "a model call" if paused.batch == "inference" else "a costed tool call"
    return (f"({peer} stopped: the session's cost budget ran out before {what} — cap ${b.cap:.4f}, "
            f"spent ${b.spent:.4f}, remaining ${b.remaining:.4f}, next step estimated ${b.estimate:.4f}. "
            f"The user must approve more budget before more work is done.){_partial(answer)}")


def _partial(answer: str) -> str:
    return f"\nWhat it had so far:\n{answer}" if answer else ""
