"""The organism file: its typed shape, and loading it with every mistake named.

A broken file raises `OrganismError` with a reason an operator can act on; nothing is
half-applied (the registry swaps in a new spec only once it validated whole).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_PATH = Path(__file__).with_name("default.yaml")
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
GLOB_CHARS = set("*?[")
DEFAULT_INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {"text": {"type": "string", "description": "The message for the agent."}},
    "required": ["text"],
    "additionalProperties": True,
}


class OrganismError(Exception):
    """The organism file cannot be used; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AgentSpec(BaseModel):
    """One agent as the file declares it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    model: str | None = None
    tools: list[str] = Field(default_factory=lambda: ["*"])
    peers: list[str] = Field(default_factory=list)
    system_prompt: str = Field(min_length=1)
    token_budget: int = Field(100_000, gt=0)
    input_schema: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_INPUT_SCHEMA))
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be lower-case letters, digits, '-' or '_', starting with a letter (max 64)")
        return value

    @field_validator("system_prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        return value.strip()

    def select_tools(self, available: list[str]) -> list[str]:
        """The tool names this agent gets out of `available` (names or glob patterns)."""
        chosen: list[str] = []
        for name in available:
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.tools) and name not in chosen:
                chosen.append(name)
        return chosen


class OrganismSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "mlagent"
    agents: list[AgentSpec] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def agent(self, name: str) -> AgentSpec | None:
        return next((a for a in self.agents if a.name == name), None)

    def names(self) -> list[str]:
        return [a.name for a in self.agents]


def parse(text: str, source: str, tool_names: list[str], models: list[str]) -> OrganismSpec:
    """Parse and check an organism document against the tools and models this server has."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise OrganismError(f"{source}: not valid YAML ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(raw, dict):
        raise OrganismError(f"{source}: the document must be a mapping with an 'agents' list")
    try:
        spec = OrganismSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise OrganismError(f"{source}: {where}: {first['msg']}") from None
    seen: set[str] = set()
    for i, agent in enumerate(spec.agents):
        where = f"{source}: agents[{i}] ({agent.name})"
        if agent.name in seen:
            raise OrganismError(f"{where}: the name is declared twice")
        seen.add(agent.name)
        for tool in agent.tools:
            if not GLOB_CHARS & set(tool) and tool not in tool_names:
                raise OrganismError(f"{where}: unknown tool {tool!r}; this server has: {', '.join(tool_names)}")
        if agent.model is not None and agent.model not in models:
            raise OrganismError(f"{where}: unknown model {agent.model!r}; see GET /api/config/model")
        if agent.input_schema.get("type", "object") != "object":
            raise OrganismError(f"{where}: input_schema must describe a JSON object")
    for i, agent in enumerate(spec.agents):
        for peer in agent.peers:
            if peer not in seen or peer == agent.name:
                raise OrganismError(f"{source}: agents[{i}] ({agent.name}): peer {peer!r} is not another declared agent")
    return spec


def load(path: Path | None, tool_names: list[str], models: list[str]) -> OrganismSpec:
    """Read the file at `path` (the built-in default when None)."""
    path = path or DEFAULT_PATH
    try:
        text = path.read_text()
    except OSError as exc:
        raise OrganismError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse(text, str(path), tool_names, models)
