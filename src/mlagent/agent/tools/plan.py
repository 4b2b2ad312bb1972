"""The plan tool: the agent writes down its plan; the plan streams as `response.plan`."""

from __future__ import annotations

from typing import Any

from ..notices import PlanNotice
from .base import Tool, ToolContext, ToolError

STATUSES = ("pending", "in_progress", "completed")


class PlanTool(Tool):
    name = "update_plan"
    description = (
        "Record or update your step-by-step plan for this task. Send the whole plan each time, "
        "with each step's status (pending, in_progress, completed)."
    )
    parameters = {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"step": {"type": "string"}, "status": {"type": "string", "enum": list(STATUSES)}},
                    "required": ["step", "status"],
                },
            }
        },
        "required": ["steps"],
    }

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        steps = arguments.get("steps")
        if not isinstance(steps, list) or not steps:
            raise ToolError("steps must be a non-empty list of {step, status}")
        clean = []
        for i, entry in enumerate(steps):
            if not isinstance(entry, dict) or not isinstance(entry.get("step"), str):
                raise ToolError(f"steps[{i}] needs a 'step' string")
            status = entry.get("status", "pending")
            if status not in STATUSES:
                raise ToolError(f"steps[{i}].status must be one of {', '.join(STATUSES)}")
            clean.append({"step": entry["step"], "status": status})
        ctx.notify(PlanNotice(steps=clean))
        done = sum(1 for s in clean if s["status"] == "completed")
        return f"Plan recorded: {len(clean)} steps, {done} completed."
