"""Capabilities are the agent's tools, described for operators: what each does, its
argument schema, and an example call (the tool's own `example` when it has one, else one
built from the schema so that it validates)."""

from __future__ import annotations

from typing import Any

from ..agent.tools.base import Tool
from .models import CapabilityDetail, CapabilityInfo, ExampleCall

_SAMPLES: dict[str, Any] = {"string": "example", "integer": 1, "number": 1.0, "boolean": True, "null": None}


def example_value(schema: dict[str, Any], name: str = "") -> Any:
    """A value that satisfies `schema` (the subset of JSON Schema tools use)."""
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return example_value(schema[key][0], name)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {key: example_value(props.get(key, {}), key) for key in required}
    if kind == "array":
        return [example_value(schema.get("items") or {"type": "string"}, name)]
    if kind == "string":
        minimum = int(schema.get("minLength", 0) or 0)
        text = f"example {name}".strip() if name else "example"
        return text.ljust(minimum, "x")
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = _SAMPLES[kind] if low is None else low + (1 if "exclusiveMinimum" in schema else 0)
        return int(value) if kind == "integer" else float(value)
    return _SAMPLES.get(kind)


def info(tool: Tool, agents: list[str]) -> CapabilityInfo:
    return CapabilityInfo(name=tool.name, description=tool.description, read_only=tool.read_only, agents=agents)


def detail(tool: Tool, agents: list[str]) -> CapabilityDetail:
    arguments = getattr(tool, "example", None) or example_value(tool.parameters)
    return CapabilityDetail(**info(tool, agents).model_dump(), parameters=tool.parameters,
                            example=ExampleCall(name=tool.name, arguments=arguments if isinstance(arguments, dict) else {}))
