"""Delegation: an agent hands a self-contained sub-task to one of its declared peers (the
organism's `peers`, e.g. the main agent's `researcher`), which runs its own loop with its
own prompt and tools and answers in text. How a peer runs is the runtime's business: it
puts a `Delegate` callable in the tool context (`extras["delegate"]`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .base import Tool, ToolContext, ToolError

Delegate = Callable[[str, str], Awaitable[str]]  # (peer agent, task) -> the peer's answer
DELEGATE_KEY = "delegate"


class DelegateTool(Tool):
    name = "delegate"
    description = (
        "Hand a self-contained sub-task to one of your peer agents (for example the 'researcher' for looking up "
        "models, datasets and papers) and get its answer back. The peer does not see this conversation: give it "
        "everything it needs in 'task'."
    )
    parameters = {
        "type": "object",
        "properties": {
            "agent": {"type": "string", "description": "The peer agent's name"},
            "task": {"type": "string", "minLength": 1, "description": "What the peer should do, self-contained"},
        },
        "required": ["agent", "task"],
    }
    example = {"agent": "researcher",
               "task": "Find three small text-classification datasets on the Hub and compare their size and licence."}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        delegate: Delegate | None = ctx.extras.get(DELEGATE_KEY)
        if delegate is None:
            raise ToolError("this agent has no peers to delegate to")
        agent, task = arguments.get("agent"), arguments.get("task")
        if not isinstance(agent, str) or not agent:
            raise ToolError("'agent' must be the name of one of your peers")
        if not isinstance(task, str) or not task.strip():
            raise ToolError("'task' must be a non-empty description of the sub-task")
        return await delegate(agent, task)
