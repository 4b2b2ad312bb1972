"""The tool interface and the tool set the loop dispatches through."""

from __future__ import annotations

import base64
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from ..notices import Notice

log = logging.getLogger("mlagent.tools")


@dataclass
class ToolContext:
    """What a tool may know about the call: who, which session, and how to report."""

    account: str
    session_id: str
    response_id: str
    token: SecretStr | None = None
    call_id: str = ""  # the tool call being run (an HF Job carries it, to settle its charge when it ends)
    notify: Callable[[Notice], None] = lambda notice: None
    extras: dict[str, Any] = field(default_factory=dict)


class Tool(ABC):
    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool = True
    # Acts as the caller on the Hub (their namespace, jobs, repos): useless without their token,
    # so a turn with none is not offered it (tasks/tools.restrict_tools).
    needs_hf_token: bool = False
    # What `estimate_cost_usd` is spent on, for the budget split (seed 000: inference, jobs, sandboxes).
    cost_kind: Literal["job", "sandbox", "tool"] = "tool"

    def estimate_cost_usd(self, arguments: dict[str, Any]) -> float:
        """What calling the tool will cost the caller (0 for free tools)."""
        return 0.0

    @abstractmethod
    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        """Run the tool and return its result as text for the model."""

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class ToolError(Exception):
    """A failure the model should read and can react to (returned as the tool result)."""


class ToolSet:
    def __init__(self, tools: Iterable[Tool] = (),
                 finishers: Iterable[Callable[[ToolContext], Awaitable[None]]] = ()) -> None:
        self._tools = {t.name: t for t in tools}
        self._finishers = list(finishers)

    async def finish(self, ctx: ToolContext) -> None:
        """Turn-end hooks (e.g. recovering artifacts); they report through `ctx.notify`."""
        for finisher in self._finishers:
            await finisher(ctx)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def without_hf_token(self) -> ToolSet:
        """The tools that work without the caller's Hugging Face token."""
        return ToolSet((t for t in self._tools.values() if not t.needs_hf_token), self._finishers)

    def only(self, names: Iterable[str]) -> ToolSet:
        wanted = set(names)
        return ToolSet((t for t in self._tools.values() if t.name in wanted), self._finishers)

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self._tools.values()]

    async def call(self, name: str, raw_arguments: str, ctx: ToolContext) -> str:
        tool = self._tools.get(name)
        if tool is None:
            return f"Error: unknown tool {name!r}. Available tools: {', '.join(self.names()) or 'none'}."
        try:
            arguments = json.loads(raw_arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
        except ValueError as exc:
            return f"Error: the arguments for {name} are not a JSON object ({exc})."
        return _redact(await self._invoke(tool, name, arguments, ctx), ctx)

    async def _invoke(self, tool: Tool, name: str, arguments: dict[str, Any], ctx: ToolContext) -> str:
        try:
            return await tool.invoke(arguments, ctx)
        except ToolError as exc:
            return f"Error: {exc}"
        except Exception as exc:  # noqa: BLE001 — a broken tool is reported to the model, not the turn
            log.exception("tool %s failed", name)
            return f"Error: the {name} tool failed unexpectedly ({exc.__class__.__name__})."


def _redact(output: str, ctx: ToolContext) -> str:
    """The caller's token never reaches the model, the log or the database through a tool's
    output: verbatim, base64 (standard or URL-safe, at any alignment), hex or reversed.
    Other encodings (split, XOR'd, ...) are not caught: what is promised is in docs/security.md;
    sandboxed code never sees the token in the first place."""
    if ctx.token is not None:
        for form in secret_forms(ctx.token.get_secret_value()):
            if form in output:
                output = output.replace(form, "[caller token redacted]")
    return output


def secret_forms(secret: str) -> list[str]:
    """The strings a tool output could carry `secret` as (longest first): itself, reversed,
    hex, and for base64 the part of the encoding that depends on the secret alone, for each
    of the three byte alignments it can start at inside a longer encoded text."""
    if len(secret) < 8:
        return [secret] if secret else []
    raw = secret.encode()
    forms = {secret, secret[::-1], raw.hex(), raw.hex().upper()}
    for pad in range(3):
        total_bits = (pad + len(raw)) * 8
        start, end = (pad * 8 + 5) // 6, total_bits // 6
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            forms.add(encode(b"\0" * pad + raw).decode()[start:end])
    return sorted(forms, key=len, reverse=True)
