"""Hub lookups: search models, datasets and Spaces; read one repo's metadata and card."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .base import Tool, ToolContext, ToolError
from .hubclient import KINDS, HubClient, clamp, kind_of, need_str, token_of

SORTS = ("downloads", "likes", "trending_score", "last_modified", "created_at")
CARD_CHARS = 6000


class HubSearchTool(Tool):
    name = "hub_search"
    description = ("Search the Hugging Face Hub for models, datasets or Spaces. Returns ids, key metadata and "
                   "page URLs to cite.")
    parameters = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": list(KINDS), "description": "what to search (default model)"},
            "query": {"type": "string", "description": "free-text search"},
            "author": {"type": "string", "description": "only repos of this user or organization"},
            "filter": {"type": "string", "description": "a tag, e.g. 'text-generation' or 'library:peft'"},
            "sort": {"type": "string", "enum": list(SORTS)},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        },
    }

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        kind = kind_of(arguments)
        query, author, tag = arguments.get("query"), arguments.get("author"), arguments.get("filter")
        if not (query or author or tag):
            raise ToolError("give at least one of query, author or filter")
        sort = arguments.get("sort") or "downloads"
        if sort not in SORTS:
            raise ToolError(f"sort must be one of {', '.join(SORTS)}")
        limit = clamp(arguments.get("limit"), 1, 50, 10)
        api = self.hub.api(ctx)
        listers: dict[str, Callable[..., Iterable[Any]]] = {
            "model": api.list_models, "dataset": api.list_datasets, "space": api.list_spaces}
        lister = listers[kind]
        kw: dict[str, Any] = {"search": query or None, "author": author or None, "filter": tag or None,
                              "sort": sort, "limit": limit}
        found = await self.hub.call(f"search {kind}s", lambda: list(lister(**kw)))
        if not found:
            return f"No {kind}s found for {kw['search'] or ''} {author or ''} {tag or ''}".strip() + "."
        lines = [f"{len(found)} {kind}(s):"]
        for info in found:
            bits = [f"- {info.id}"]
            for label in ("pipeline_tag", "library_name", "sdk"):
                value = getattr(info, label, None)
                if value:
                    bits.append(f"{label}={value}")
            for label in ("downloads", "likes"):
                value = getattr(info, label, None)
                if value is not None:
                    bits.append(f"{label}={value}")
            bits.append(self.hub.repo_url(info.id, kind))
            lines.append(" ".join(bits))
        return "\n".join(lines)


class HubRepoDetailsTool(Tool):
    name = "hub_repo_details"
    description = ("Read one model, dataset or Space on the Hub: metadata (tags, downloads, likes, license, "
                   "files) and the start of its card (README).")
    parameters = {
        "type": "object",
        "properties": {
            "repo_id": {"type": "string", "description": "e.g. 'BAAI/bge-m3'"},
            "kind": {"type": "string", "enum": list(KINDS)},
        },
        "required": ["repo_id"],
    }

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        repo_id = need_str(arguments, "repo_id")
        kind = kind_of(arguments)
        api = self.hub.api(ctx)
        readers: dict[str, Callable[[str], Any]] = {
            "model": api.model_info, "dataset": api.dataset_info, "space": api.space_info}
        reader = readers[kind]
        info = await self.hub.call(f"read the {kind} {repo_id}", reader, repo_id)
        lines = [f"{kind} {info.id} — {self.hub.repo_url(info.id, kind)}"]
        for label in ("pipeline_tag", "library_name", "sdk", "downloads", "likes", "last_modified", "gated", "private"):
            value = getattr(info, label, None)
            if value not in (None, ""):
                lines.append(f"{label}: {value}")
        if getattr(info, "tags", None):
            lines.append("tags: " + ", ".join(info.tags[:40]))
        siblings = getattr(info, "siblings", None) or []
        if siblings:
            names = [s.rfilename for s in siblings]
            more = f" (+{len(names) - 30} more)" if len(names) > 30 else ""
            lines.append("files: " + ", ".join(names[:30]) + more)
        card = await self._card(repo_id, kind, ctx)
        if card:
            cut = "\n…[card truncated]" if len(card) > CARD_CHARS else ""
            lines.append("--- card ---\n" + card[:CARD_CHARS] + cut)
        else:
            lines.append("(no README card)")
        return "\n".join(lines)

    async def _card(self, repo_id: str, kind: str, ctx: ToolContext) -> str | None:
        from huggingface_hub import hf_hub_url  # a slow import: not at start
        from huggingface_hub.utils import build_hf_headers, get_session

        url = hf_hub_url(repo_id, "README.md", repo_type=None if kind == "model" else kind, endpoint=self.hub.endpoint)
        headers = build_hf_headers(token=token_of(ctx))

        def fetch() -> str | None:
            r = get_session().get(url, headers=headers, follow_redirects=True)
            return r.text if r.status_code == 200 else None

        return await self.hub.call(f"read the card of {repo_id}", fetch)
