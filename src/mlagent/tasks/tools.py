"""Which of the agent's tools a task may use: names from `tools` resolved to real tools.

A name is either a tool of the agent's tool set (e.g. `update_plan`) or one of the seed's
capability names, which stand for a group of the agent's tools chosen by name pattern
(so they keep meaning the same thing as tools are added). Unknown names are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ..agent.tools.base import ToolSet
from ..errors import ServiceError
from ..runtime.stored import StoredRequest

# Always available: the agent's own bookkeeping, not a capability.
ALWAYS = ("update_plan",)

# Seed 001's capability names -> patterns over the agent's tool names.
CAPABILITIES: dict[str, re.Pattern[str]] = {
    "code-generator": re.compile(r"(sandbox|file|edit|write|read_file|python|shell|bash|exec|run_)"),
    "documentation-search": re.compile(r"(search|paper|doc|card|hub_|dataset|model_info|inspect)"),
}


class ToolCatalogue:
    def __init__(self, tool_names: Callable[[], Iterable[str]]) -> None:
        self._tool_names = tool_names

    def names(self) -> list[str]:
        return sorted(set(self._tool_names()))

    def known(self) -> list[str]:
        return sorted(set(self.names()) | set(CAPABILITIES))

    def resolve(self, requested: list[str] | None, param: str = "tools") -> list[str] | None:
        """The tool names the agent may use, or None for all of them. Raises a 400 naming
        every unknown entry."""
        if requested is None:
            return None
        names = set(self.names())
        unknown = [n for n in requested if n not in names and n not in CAPABILITIES]
        if unknown:
            raise ServiceError(
                400, "unknown_tool",
                f"Unknown tool(s): {', '.join(repr(n) for n in unknown)}. Known tools: {', '.join(self.known())}.",
                param, retryable=False,
            )
        allowed = {n for n in ALWAYS if n in names}
        for name in requested:
            if name in names:
                allowed.add(name)
            else:
                allowed.update(t for t in names if CAPABILITIES[name].search(t))
        return sorted(allowed)


def restrict_tools(toolset_for: Callable[[StoredRequest | None], ToolSet]) -> Callable[[StoredRequest | None], ToolSet]:
    """Wrap the composition root's `toolset_for(request)` so a turn whose stored request
    names `allowed_tools` (a task's `tools`) gets only those tools, and a turn on the
    server's LLM key (no caller token) gets none of the tools that act as the caller on the
    Hub (jobs, repo writes): offered, they could only fail. `None` asks for every tool."""

    def build(request: StoredRequest | None) -> ToolSet:
        tools = toolset_for(request)
        if request is None:
            return tools
        if request.credential == "server":  # no caller token: Hub tools acting as the caller cannot work
            tools = tools.without_hf_token()
        return tools if request.allowed_tools is None else tools.only(request.allowed_tools)

    return build
