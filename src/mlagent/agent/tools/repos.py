"""Hub repos: create models, datasets and Spaces and push files from the sandbox to them.
Every repo a session touches joins the session's collection and is announced as an artifact."""

from __future__ import annotations

from typing import Any

from ...sandbox import Sandbox, SandboxPathError
from .base import Tool, ToolContext, ToolError
from .hubclient import KINDS, HubClient, kind_of, need_str

SDKS = ("gradio", "docker", "static")


class RepoCreateTool(Tool):
    name = "repo_create"
    read_only = False
    description = ("Create a model, dataset or Space repo on the Hub in the user's namespace (or an org they "
                   "can write to). Succeeds if it already exists. Returns its URL.")
    parameters = {"type": "object", "properties": {
        "repo_id": {"type": "string", "description": "'name' (user's namespace) or 'namespace/name'"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "private": {"type": "boolean"},
        "space_sdk": {"type": "string", "enum": list(SDKS), "description": "for Spaces (default gradio)"}},
        "required": ["repo_id"]}

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        kind = kind_of(arguments)
        repo_id = await self.hub.qualify(ctx, need_str(arguments, "repo_id"))
        sdk = arguments.get("space_sdk") or ("gradio" if kind == "space" else None)
        if sdk is not None and sdk not in SDKS:
            raise ToolError(f"space_sdk must be one of {', '.join(SDKS)}")
        url = await self.hub.call(f"create the {kind} repo {repo_id}", self.hub.api(ctx).create_repo, repo_id,
                                  repo_type=kind, private=bool(arguments.get("private")), exist_ok=True,
                                  space_sdk=sdk)
        link = self.hub.repo_url(repo_id, kind)
        ctx.notify("artifact", {"type": kind, "repo_id": repo_id, "url": link})
        slug = await self.hub.collect(ctx, repo_id, kind)
        note = f" (added to collection {slug})" if slug else ""
        return f"{kind} repo ready: {link}{note}" + ("" if str(url).rstrip("/") == link else f" [{url}]")


class RepoUploadTool(Tool):
    name = "repo_upload"
    read_only = False
    description = ("Push a file or a whole folder from your sandbox to a Hub repo (created if missing). "
                   "Returns the commit URL.")
    parameters = {"type": "object", "properties": {
        "repo_id": {"type": "string"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "path": {"type": "string", "description": "file or folder in the sandbox"},
        "path_in_repo": {"type": "string", "description": "target path (default: the file name / repo root)"},
        "commit_message": {"type": "string"}},
        "required": ["repo_id", "path"]}

    def __init__(self, hub: HubClient, sandbox: Sandbox) -> None:
        self.hub = hub
        self.sandbox = sandbox

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        kind = kind_of(arguments)
        repo_id = await self.hub.qualify(ctx, need_str(arguments, "repo_id"))
        rel = need_str(arguments, "path")
        try:
            local = self.sandbox.resolve(ctx.session_id, rel)
        except SandboxPathError as exc:
            raise ToolError(str(exc)) from None
        if not local.exists():
            raise ToolError(f"{rel!r} does not exist in the sandbox")
        api = self.hub.api(ctx)
        message = arguments.get("commit_message") or f"Upload {rel} with mlagent"
        await self.hub.call(f"create the {kind} repo {repo_id}", api.create_repo, repo_id, repo_type=kind,
                            exist_ok=True, space_sdk="gradio" if kind == "space" else None)
        target = arguments.get("path_in_repo")
        if local.is_dir():
            info = await self.hub.call(f"upload {rel} to {repo_id}", api.upload_folder, folder_path=str(local),
                                       path_in_repo=target or None, repo_id=repo_id, repo_type=kind,
                                       commit_message=message)
        else:
            info = await self.hub.call(f"upload {rel} to {repo_id}", api.upload_file, path_or_fileobj=str(local),
                                       path_in_repo=target or local.name, repo_id=repo_id, repo_type=kind,
                                       commit_message=message)
        link = self.hub.repo_url(repo_id, kind)
        ctx.notify("artifact", {"type": kind, "repo_id": repo_id, "url": link})
        await self.hub.collect(ctx, repo_id, kind)
        return f"Pushed {rel} to {link} (commit {getattr(info, 'oid', '?')}: {getattr(info, 'commit_url', '')})."
