"""Hub repos: create models, datasets and Spaces and push files from the sandbox to them.
Every repo a session touches joins the session's collection and is announced as an artifact."""

from __future__ import annotations

import os
import posixpath
import stat
from typing import Any, BinaryIO

from ...sandbox import Sandbox, files_beneath
from ..notices import ArtifactNotice
from .base import Tool, ToolContext, ToolError
from .hubclient import KINDS, HubClient, kind_of, need_str
from .workspace import open_for_reading, with_reset_notice

SDKS = ("gradio", "docker", "static")


class RepoCreateTool(Tool):
    needs_hf_token = True
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
                                  space_sdk=sdk, permission="repo.write")
        link = self.hub.repo_url(repo_id, kind)
        ctx.notify(ArtifactNotice(type=kind, repo_id=repo_id, url=link))
        slug = await self.hub.collect(ctx, repo_id, kind)
        note = f" (added to collection {slug})" if slug else ""
        return f"{kind} repo ready: {link}{note}" + ("" if str(url).rstrip("/") == link else f" [{url}]")


class RepoUploadTool(Tool):
    needs_hf_token = True
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
        return await with_reset_notice(self.sandbox, ctx.session_id, self._push(arguments, ctx))

    def _files(self, ctx: ToolContext, rel: str, target: str | None) -> list[tuple[str, BinaryIO]]:
        """(path in repo, open file) of the file or folder `rel`: opened beneath the session
        directory following no symlink (sandboxed code may change the directory meanwhile);
        links and special files inside a folder are skipped, as are .git and the Hub cache."""
        fd = open_for_reading(self.sandbox, ctx.session_id, rel)
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            name = target or posixpath.basename(rel.rstrip("/"))
            return [(name, os.fdopen(fd, "rb"))]
        if not stat.S_ISDIR(mode):
            os.close(fd)
            raise ToolError(f"{rel!r} is neither a regular file nor a folder in the sandbox")
        prefix = (target or "").strip("/")
        try:
            found = [(name, os.fdopen(file_fd, "rb")) for name, file_fd in files_beneath(fd)]
        finally:
            os.close(fd)
        from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS  # a slow import: not at start
        from huggingface_hub.utils import filter_repo_objects

        kept = list(filter_repo_objects(found, ignore_patterns=DEFAULT_IGNORE_PATTERNS, key=lambda f: f[0]))
        for _name, fh in found:
            if not any(fh is k for _, k in kept):
                fh.close()
        return [(f"{prefix}/{name}" if prefix else name, fh) for name, fh in kept]

    async def _push(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        kind = kind_of(arguments)
        repo_id = await self.hub.qualify(ctx, need_str(arguments, "repo_id"))
        rel = need_str(arguments, "path")
        target = arguments.get("path_in_repo")
        message = arguments.get("commit_message") or f"Upload {rel} with mlagent"
        files = self._files(ctx, rel, target)
        try:
            if not files:
                raise ToolError(f"{rel!r} holds no files to upload")
            api = self.hub.api(ctx)
            await self.hub.call(f"create the {kind} repo {repo_id}", api.create_repo, repo_id, repo_type=kind,
                                exist_ok=True, space_sdk="gradio" if kind == "space" else None,
                                permission="repo.write")


            def commit() -> Any:  # hashing the files reads them: off the event loop too
                from huggingface_hub import CommitOperationAdd

                ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=fh) for name, fh in files]
                return api.create_commit(repo_id, ops, repo_type=kind, commit_message=message)

            info = await self.hub.call(f"upload {rel} to {repo_id}", commit, permission="repo.write")
        finally:
            for _, fh in files:
                fh.close()
        link = self.hub.repo_url(repo_id, kind)
        ctx.notify(ArtifactNotice(type=kind, repo_id=repo_id, url=link))
        await self.hub.collect(ctx, repo_id, kind)
        return f"Pushed {rel} to {link} (commit {getattr(info, 'oid', '?')}: {getattr(info, 'commit_url', '')})."
