"""How a task's `tools` resolve to the agent's tools (unit: the names of issue 3's tools
are not known here, so the capability patterns are checked on representative names)."""

from __future__ import annotations

import pytest

from mlagent.agent.tools.base import Tool, ToolSet
from mlagent.errors import ServiceError
from mlagent.runtime.stored import StoredRequest
from mlagent.tasks.tools import ToolCatalogue, restrict_tools

NAMES = ["update_plan", "sandbox_run", "write_file", "hub_search", "paper_search", "inspect_dataset", "hf_jobs_run"]


class Named(Tool):
    description = "test"
    parameters = {"type": "object"}

    def __init__(self, name: str) -> None:
        self.name = name

    async def invoke(self, arguments, ctx) -> str:
        return ""


def test_capabilities_and_names_resolve():
    cat = ToolCatalogue(lambda: NAMES)
    assert cat.resolve(None) is None
    assert cat.resolve([]) == ["update_plan"]
    assert cat.resolve(["hf_jobs_run"]) == ["hf_jobs_run", "update_plan"]
    assert cat.resolve(["code-generator"]) == ["sandbox_run", "update_plan", "write_file"]
    assert cat.resolve(["documentation-search"]) == ["hub_search", "inspect_dataset", "paper_search", "update_plan"]


def test_unknown_names_are_all_reported():
    with pytest.raises(ServiceError) as info:
        ToolCatalogue(lambda: NAMES).resolve(["hub_search", "nope", "code-generator", "zap"])
    assert info.value.status == 400 and info.value.param == "tools"
    assert "'nope'" in info.value.message and "'zap'" in info.value.message


def test_restrict_tools_applies_stored_allowed_tools():
    build = restrict_tools(lambda request: ToolSet(Named(n) for n in NAMES))
    assert build(None).names() == sorted(NAMES)
    assert build(StoredRequest(input="x")).names() == sorted(NAMES)
    only = StoredRequest.load({"input": "x", "allowed_tools": ["update_plan", "hub_search"]})  # as a row holds it
    assert build(only).names() == ["hub_search", "update_plan"]
