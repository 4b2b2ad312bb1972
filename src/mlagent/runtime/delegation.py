"""Runs a peer agent for the `delegate` tool: a nested agent loop inside the calling turn,
with the peer's prompt, tools and model, on the turn's LLM client. Its LLM calls are
recorded on the turn (so usage and cost count them); its text comes back as the tool
result. It cannot delegate further, and cancelling the turn cancels it."""

from __future__ import annotations

from ..agent.llm import ChatLLM
from ..agent.loop import AgentLoop
from ..agent.steps import LlmCalled, TextDone
from ..agent.tools.base import ToolContext, ToolSet
from ..agent.tools.delegate import Delegate, DelegateTool
from ..organism.registry import AgentProfile, AgentRegistry
from .emitter import TurnEmitter


def make_delegate(agents: AgentRegistry, caller: AgentProfile, llm: ChatLLM, toolset: ToolSet, ctx: ToolContext,
                  emitter: TurnEmitter, default_model: str, max_steps: int) -> Delegate:
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
        answer = ""
        async for step in AgentLoop(llm, tools, max_steps).run(profile.model or default_model, messages, sub_ctx):
            if isinstance(step, LlmCalled):
                await emitter.handle(step.model_copy(update={"agent": peer}))
            elif isinstance(step, TextDone):
                answer = step.text
        return answer or f"({peer} finished without an answer.)"

    return delegate
