"""Runs the real server with extra, test-only tools. `launch_job` stands for
an HF Jobs launch. It lives here, not in the product, because the real job tool is
another issue's; its estimate is the product's own (`mlagent.usage.estimates.job_cost`:
flavor hourly price × timeout), and every launch is appended to `launches.jsonl` in the
data dir so a test can prove a paused job was never launched. `ask_subagent` stands
for a tool that makes its own model calls and reports them.

Usage (by tests): `server.argv = [sys.executable, "-m", "tests.job_tool_server"]`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlagent.agent.notices import CostNotice, LlmCallNotice
from mlagent.agent.tools.base import Tool, ToolContext
from mlagent.config import Settings
from mlagent.usage.estimates import job_cost, parse_timeout
from mlagent.usage.prices import PriceTable, load_prices


class LaunchJobTool(Tool):
    name = "launch_job"
    description = "Launch a training job on Hugging Face hardware."
    parameters = {
        "type": "object",
        "properties": {"flavor": {"type": "string"}, "timeout": {"type": "string"},
                       "ran_seconds": {"type": "number"}},
        "required": ["flavor"],
    }
    read_only = False
    cost_kind = "job"

    def __init__(self, prices: PriceTable, launches: Path) -> None:
        self._prices = prices
        self._launches = launches

    def estimate_cost_usd(self, arguments: dict[str, Any]) -> float:
        return job_cost(self._prices, arguments["flavor"], parse_timeout(arguments.get("timeout"))).usd

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        with self._launches.open("a") as f:
            f.write(json.dumps({"response_id": ctx.response_id, **arguments}) + "\n")
        if "ran_seconds" in arguments:  # the job finished: its actual cost replaces the estimate
            ctx.notify(CostNotice(usd=job_cost(self._prices, arguments["flavor"], arguments["ran_seconds"]).usd))
        return f"Launched job_123 on {arguments['flavor']}."


class SubAgentTool(Tool):
    """Stands for a tool that calls a model itself (a research sub-agent): it reports
    each of its model calls so they are logged and charged to the session."""

    name = "ask_subagent"
    description = "Ask a research sub-agent."
    parameters = {"type": "object", "properties": {"input_tokens": {"type": "integer"},
                                                   "output_tokens": {"type": "integer"}}}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        ctx.notify(LlmCallNotice(agent="research", model="moonshotai/Kimi-K2.6:novita", latency_ms=5.0,
                                 input_tokens=arguments["input_tokens"], output_tokens=arguments["output_tokens"]))
        return "Summary from the sub-agent."


def main() -> None:
    settings = Settings()
    prices = load_prices(settings.price_table)
    launches = settings.data_dir / "launches.jsonl"
    from mlagent.cli import main as cli_main

    cli_main(["serve"], extra_tools=[LaunchJobTool(prices, launches), SubAgentTool()])


if __name__ == "__main__":
    main()
