"""Sandbox tools: files and commands in the session's own sandbox directory.

Everything runs through `mlagent.sandbox.Sandbox` (limits, bwrap, clean environment).
Commands get no network unless the call asks for Hub access; then — and only then — the
caller's token and the Hub endpoint are put in the command's environment.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...sandbox import RunResult, Sandbox, SandboxPathError
from ..notices import CostNotice
from .base import Tool, ToolContext, ToolError
from .hubclient import HubClient, clamp, need_str

READ_LIMIT = 64 * 1024
T = TypeVar("T")
# What a command costs comes from the server's price table (usage/prices.yaml, `sandbox`),
# injected as `sandbox_price` (seconds -> USD) so there is one source of prices.
SandboxPrice = Callable[[float], float]


async def with_reset_notice(sandbox: Sandbox, session_id: str, work: Awaitable[str]) -> str:
    """`work`'s result (or error), told once when the retention sweep emptied the directory."""
    notice = sandbox.take_reset_notice(session_id)
    try:
        output = await work
    except ToolError as exc:
        raise ToolError(f"{exc}\n{notice}" if notice else str(exc)) from None
    return f"{notice}\n\n{output}" if notice else output


def open_for_reading(sandbox: Sandbox, session_id: str, rel: str) -> int:
    """A read-only fd of `rel` in the session's sandbox, opened following no symlink
    (sandboxed code may change the directory meanwhile); refusals become tool errors."""
    try:
        return sandbox.open(session_id, rel, os.O_RDONLY | os.O_NONBLOCK)
    except SandboxPathError as exc:
        raise ToolError(str(exc)) from None
    except FileNotFoundError:
        raise ToolError(f"{rel!r} does not exist in the sandbox") from None
    except OSError as exc:
        raise ToolError(f"cannot read {rel!r} in the sandbox ({exc.strerror})") from None


class _SandboxTool(Tool):
    def __init__(self, sandbox: Sandbox, hub: HubClient) -> None:
        self.sandbox = sandbox
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        return await with_reset_notice(self.sandbox, ctx.session_id, self._invoke(arguments, ctx))

    async def _invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        raise NotImplementedError

    def _path(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except SandboxPathError as exc:
            raise ToolError(str(exc)) from None


class WriteFileTool(_SandboxTool):
    name = "write_file"
    read_only = False
    description = "Create or overwrite a text file in your sandbox directory (paths are relative to it)."
    parameters = {"type": "object", "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                  "required": ["path", "content"]}

    async def _invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        path = need_str(arguments, "path")
        content = arguments.get("content")
        if not isinstance(content, str):
            raise ToolError("'content' must be a string")
        self._path(self.sandbox.write_bytes, ctx.session_id, path, content.encode())
        return f"Wrote {len(content.encode())} bytes to {path}."


class ReadFileTool(_SandboxTool):
    name = "read_file"
    description = "Read a text file from your sandbox directory (first 64 KB, or a line range)."
    parameters = {"type": "object", "properties": {
        "path": {"type": "string"},
        "start_line": {"type": "integer", "minimum": 1}, "end_line": {"type": "integer", "minimum": 1}},
        "required": ["path"]}

    async def _invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        path = need_str(arguments, "path")
        data, size = self._path(self.sandbox.read_bytes, ctx.session_id, path, READ_LIMIT)
        text = data.decode(errors="replace")
        if arguments.get("start_line") or arguments.get("end_line"):
            lines = text.splitlines()
            start = clamp(arguments.get("start_line"), 1, max(1, len(lines)), 1)
            end = clamp(arguments.get("end_line"), start, max(start, len(lines)), len(lines))
            return "\n".join(f"{i}: {line}" for i, line in enumerate(lines[start - 1:end], start))
        more = f"\n…[{size} bytes in all; read a line range for the rest]" if size > len(data) else ""
        return text + more


class EditFileTool(_SandboxTool):
    name = "edit_file"
    read_only = False
    description = "Replace an exact snippet in a sandbox file (it must occur once unless replace_all is true)."
    parameters = {"type": "object", "properties": {
        "path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"},
        "replace_all": {"type": "boolean"}}, "required": ["path", "old", "new"]}

    async def _invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        path = need_str(arguments, "path")
        old, new = arguments.get("old"), arguments.get("new")
        if not isinstance(old, str) or not old or not isinstance(new, str):
            raise ToolError("'old' must be a non-empty string and 'new' a string")
        data, size = self._path(self.sandbox.read_bytes, ctx.session_id, path, 8 * 1024 * 1024)
        text = data.decode()
        count = text.count(old)
        if count == 0:
            raise ToolError(f"the snippet was not found in {path}")
        if count > 1 and not arguments.get("replace_all"):
            raise ToolError(f"the snippet occurs {count} times in {path}; make it unique or set replace_all")
        self._path(self.sandbox.write_bytes, ctx.session_id, path, text.replace(old, new).encode())
        return f"Edited {path}: {count if arguments.get('replace_all') else 1} replacement(s)."


class _RunTool(_SandboxTool):
    """A command in the sandbox: estimated at its wall-clock cap, charged for its measured runtime."""

    read_only = False
    cost_kind = "sandbox"

    def __init__(self, sandbox: Sandbox, hub: HubClient, sandbox_price: SandboxPrice | None = None) -> None:
        super().__init__(sandbox, hub)
        self.sandbox_price = sandbox_price  # None: commands are free (no charge)

    def estimate_cost_usd(self, arguments: dict[str, Any]) -> float:
        return 0.0 if self.sandbox_price is None else round(self.sandbox_price(self._wall(arguments)), 6)

    def _report(self, result: RunResult, ctx: ToolContext) -> str:
        """The run's output; its actual cost (measured runtime) replaces the estimate."""
        if self.sandbox_price is not None:
            ctx.notify(CostNotice(usd=self.sandbox_price(result.duration_s)))
        return result.summary()

    async def _env(self, arguments: dict[str, Any], ctx: ToolContext) -> tuple[dict[str, str], bool]:
        """`hub_access` gives the network and HF_ENDPOINT, never the caller's token: sandboxed
        code could print it in any encoding, which no redaction can catch (docs/security.md).
        What needs the token (pushes, private repos, HF Jobs) goes through server-side tools."""
        network = bool(arguments.get("hub_access"))
        env: dict[str, str] = {}
        if network:
            env["HF_ENDPOINT"] = self.hub.endpoint
            env["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
        return env, network

    def _wall(self, arguments: dict[str, Any]) -> float:
        limit = int(self.sandbox.limits.wall_seconds)
        return float(clamp(arguments.get("timeout_seconds"), 1, limit, limit))


_RUN_PROPS = {
    "timeout_seconds": {"type": "integer", "minimum": 1, "description": "wall-clock limit (capped by the server)"},
    "hub_access": {"type": "boolean", "description": "allow network access (public Hub downloads; HF_ENDPOINT is "
                                                     "set). The user's token is never given to the sandbox: push "
                                                     "with repo_upload/model_upload (default false: no network)"},
}


class RunCommandTool(_RunTool):
    name = "run_command"
    description = ("Run a shell command (bash) in your sandbox directory, under CPU, memory, process, file-size "
                   "and time limits. No network unless hub_access is true. Returns exit code, stdout, stderr.")
    parameters = {"type": "object", "properties": {"command": {"type": "string"}, **_RUN_PROPS},
                  "required": ["command"]}

    async def _invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        command = need_str(arguments, "command")
        env, network = await self._env(arguments, ctx)
        result = await self.sandbox.run(ctx.session_id, ["bash", "-c", command], env=env, network=network,
                                        wall_seconds=self._wall(arguments))
        return self._report(result, ctx)


class RunPythonTool(_RunTool):
    name = "run_python"
    description = ("Run Python code in your sandbox directory (same limits as run_command; numpy, pandas and "
                   "scikit-learn are available). Print what you want to see.")
    parameters = {"type": "object", "properties": {"code": {"type": "string"}, **_RUN_PROPS}, "required": ["code"]}

    async def _invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        code = need_str(arguments, "code")
        env, network = await self._env(arguments, ctx)
        result = await self.sandbox.run(ctx.session_id, ["python", "-"], env=env, network=network,
                                        wall_seconds=self._wall(arguments), stdin=code.encode())
        return self._report(result, ctx)
