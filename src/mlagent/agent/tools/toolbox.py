"""The agent's toolbox: the tools it is built with and what they share (the Hub client, the sandbox).

Built once per server (tools hold no per-call state; the Hub client caches the namespace
and collection per session), then handed out per turn as a `ToolSet`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...sandbox import Sandbox
from .base import Tool, ToolContext
from .datasets import DatasetInspectTool
from .hub import HubRepoDetailsTool, HubSearchTool
from .hubclient import HubClient
from .jobs import FlavorCatalogue, JobCancelTool, JobInspectTool, JobLogsTool, JobRunTool, JobWaitTool
from .mlmodels import ModelDeployTool, ModelPredictTool, ModelRegisterTool, ModelUploadTool
from .papers import PaperDetailsTool, PaperSearchTool
from .registry import ModelRegistryPort
from .repos import RepoCreateTool, RepoUploadTool
from .research import ResearchTool
from .workspace import EditFileTool, ReadFileTool, RunCommandTool, RunPythonTool, WriteFileTool

READ_ONLY_RESEARCH = ("hub_search", "hub_repo_details", "paper_search", "paper_details", "dataset_inspect")


@dataclass
class Toolbox:
    hub: HubClient
    tools: list[Tool]
    sandbox: Sandbox | None = None  # the runtime's retention sweep removes idle sessions' directories

    async def finish(self, ctx: ToolContext) -> None:
        """At turn end: announce repos that reached the session collection from inside jobs."""
        await self.hub.recover_artifacts(ctx)


def build_toolbox(hub: HubClient, sandbox: Sandbox, *, job_poll_seconds: float = 10.0, trackio: bool = True,
                  research_max_tokens: int = 60_000, research_max_steps: int = 12,
                  job_price: Callable[[str, float], float] | None = None,
                  sandbox_price: Callable[[float], float] | None = None,
                  registry: ModelRegistryPort | None = None, hardware: FlavorCatalogue | None = None) -> Toolbox:
    """`registry`: the user's MLConnector (model_* tools); None leaves those tools out.
    `job_price` (flavor, seconds) and `sandbox_price` (seconds) come from the price table, `hardware`
    (the flavors HF Jobs offers) from the Hub's catalogue."""
    lookups: list[Tool] = [HubSearchTool(hub), HubRepoDetailsTool(hub), PaperSearchTool(hub), PaperDetailsTool(hub),
                           DatasetInspectTool(hub)]
    tools: list[Tool] = [
        *lookups,
        WriteFileTool(sandbox, hub), ReadFileTool(sandbox, hub), EditFileTool(sandbox, hub),
        RunCommandTool(sandbox, hub, sandbox_price), RunPythonTool(sandbox, hub, sandbox_price),
        JobRunTool(hub, sandbox, trackio=trackio, job_price=job_price, hardware=hardware), JobInspectTool(hub, job_poll_seconds, job_price),
        JobLogsTool(hub, job_poll_seconds), JobWaitTool(hub, job_poll_seconds, job_price),
        JobCancelTool(hub, job_poll_seconds, job_price),
        RepoCreateTool(hub), RepoUploadTool(hub, sandbox),
        ResearchTool(lookups, max_tokens=research_max_tokens, max_steps=research_max_steps),
    ]
    if registry is not None:
        tools += [ModelRegisterTool(registry), ModelUploadTool(registry, sandbox), ModelDeployTool(registry),
                  ModelPredictTool(registry)]
    return Toolbox(hub=hub, tools=tools, sandbox=sandbox)
