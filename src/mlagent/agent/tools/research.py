"""The research sub-agent: a focused question answered in its own context with read-only
Hub tools, under a token guard, returning only its summary to the main conversation."""

from __future__ import annotations

import contextlib
from typing import Any

from ..history import repair
from ..llm import ChatLLM, Completion, ReasoningChunk, TextChunk
from ..notices import LlmCallNotice
from ..steps import AgentError, Checkpoint, LlmCalled, TextDone, ToolCalled
from .base import Tool, ToolContext, ToolError, ToolSet

RESEARCH_PROMPT = (
    "You are a research sub-agent of an ML engineering assistant. Investigate the question with the read-only "
    "Hugging Face tools you have (Hub search, repo details, papers, dataset inspection). Be efficient: a handful "
    "of targeted lookups. Finish with a compact summary (at most ~300 words) of the findings, citing the Hub "
    "paper/model/dataset URLs you relied on."
)
WRAP_UP = "Stop researching now and write your summary from what you have found so far, with the URLs to cite."


class ResearchTool(Tool):
    name = "research"
    description = ("Delegate a broad research question to a sub-agent with its own context and read-only Hub "
                   "tools (models, datasets, papers). Returns its summary with cited URLs. For one to three direct "
                   "lookups, call the lookup tools yourself instead.")
    parameters = {"type": "object", "properties": {
        "task": {"type": "string", "description": "the question, with what the answer should cover"},
        "context": {"type": "string", "description": "what you already know, to avoid repeating work"}},
        "required": ["task"]}

    def __init__(self, tools: list[Tool], max_tokens: int, max_steps: int) -> None:
        self.tools = ToolSet(t for t in tools if t.read_only)
        self.max_tokens = max_tokens
        self.max_steps = max_steps

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        from ..loop import AgentLoop  # the loop imports the tool base; import here to keep layers acyclic

        task = arguments.get("task")
        if not isinstance(task, str) or not task.strip():
            raise ToolError("'task' is required")
        llm, model = ctx.extras.get("llm"), ctx.extras.get("model")
        if llm is None or model is None:
            raise ToolError("the research sub-agent is not available here (no nested research)")
        prompt = task.strip()
        if isinstance(arguments.get("context"), str) and arguments["context"].strip():
            prompt += "\n\nAlready known:\n" + arguments["context"].strip()
        messages: list[dict[str, Any]] = [{"role": "system", "content": RESEARCH_PROMPT},
                                          {"role": "user", "content": prompt}]
        sub_ctx = ToolContext(account=ctx.account, session_id=ctx.session_id, response_id=ctx.response_id,
                              token=ctx.token)
        loop = AgentLoop(llm, self.tools, self.max_steps, context_tokens=ctx.extras.get("context_tokens", 120_000))
        history, summary, used, lookups, guarded = messages, "", 0, 0, False
        try:
            async with contextlib.aclosing(loop.run(model, messages, sub_ctx)) as steps:
                async for step in steps:
                    if isinstance(step, LlmCalled):
                        used += step.input_tokens + step.output_tokens
                        ctx.notify(LlmCallNotice(model=step.model, input_tokens=step.input_tokens,
                                                 output_tokens=step.output_tokens, latency_ms=step.latency_ms,
                                                 agent=step.agent))
                        if used >= self.max_tokens:
                            guarded = True
                            break
                    elif isinstance(step, Checkpoint):
                        history = step.messages
                    elif isinstance(step, TextDone):
                        summary = step.text
                    elif isinstance(step, ToolCalled):
                        lookups += 1
        except AgentError as exc:
            if exc.code not in ("max_steps_exceeded", "context_length_exceeded"):
                raise ToolError(f"the research sub-agent failed: {exc.message}") from None
            guarded = True
        if guarded or not summary:
            summary = await self._wrap_up(llm, model, history, ctx)
        note = " (stopped early by its token/step guard)" if guarded else ""
        return f"Research summary after {lookups} lookup(s), {used} tokens{note}:\n{summary.strip()}"

    async def _wrap_up(self, llm: ChatLLM, model: str, history: list[dict[str, Any]], ctx: ToolContext) -> str:
        final: TextChunk | ReasoningChunk | Completion | None = None
        async for piece in llm.stream(model, repair(history) + [{"role": "user", "content": WRAP_UP}], []):
            final = piece
        if not isinstance(final, Completion):  # the stream ends with its Completion
            raise ToolError("the research sub-agent's summary call returned no completion")
        ctx.notify(LlmCallNotice(model=model, latency_ms=round(final.latency_ms, 3), input_tokens=final.input_tokens,
                                 output_tokens=final.output_tokens))
        return final.text or "(the sub-agent produced no summary)"
