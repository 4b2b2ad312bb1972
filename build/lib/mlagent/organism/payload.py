"""Injected payloads: checked against the agent's input schema (JSON Schema, the subset
the organism file uses: object, required, property types, enums) and turned into the
text the agent reads."""

from __future__ import annotations

import json
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "object": (dict,), "array": (list,), "null": (type(None),),
}


def normalise(payload: dict[str, Any] | str) -> dict[str, Any]:
    return {"text": payload} if isinstance(payload, str) else payload


def problems(schema: dict[str, Any], payload: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, reason) for each way `payload` breaks `schema`; empty when it conforms."""
    out: list[tuple[str, str]] = []
    props: dict[str, Any] = schema.get("properties") or {}
    for key in schema.get("required") or ():
        if key not in payload:
            out.append((f"payload.{key}", "is required"))
    for key, value in payload.items():
        rule = props.get(key)
        if rule is None:
            if schema.get("additionalProperties") is False:
                out.append((f"payload.{key}", "is not allowed by the agent's input schema"))
            continue
        kinds = rule.get("type")
        if kinds:
            names = kinds if isinstance(kinds, list) else [kinds]
            ok = any(isinstance(value, _TYPES.get(n, object)) and not (n in ("integer", "number") and
                                                                        isinstance(value, bool)) for n in names)
            if not ok:
                out.append((f"payload.{key}", f"must be of type {' or '.join(names)}"))
                continue
        if rule.get("enum") and value not in rule["enum"]:
            out.append((f"payload.{key}", f"must be one of {rule['enum']}"))
        if isinstance(value, str) and rule.get("minLength") and len(value) < rule["minLength"]:
            out.append((f"payload.{key}", f"must be at least {rule['minLength']} characters"))
    return out


def as_input(payload: dict[str, Any]) -> str:
    """What the agent reads: the text alone, or the whole object as JSON."""
    if set(payload) == {"text"} and isinstance(payload["text"], str):
        return payload["text"]
    return json.dumps(payload, ensure_ascii=False, indent=2)
