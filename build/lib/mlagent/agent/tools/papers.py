"""Hub papers: search Hugging Face Papers and read one paper page (with linked models)."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext
from .hubclient import HubClient, clamp, need_str


class PaperSearchTool(Tool):
    name = "paper_search"
    description = "Search Hugging Face Papers (arXiv papers on the Hub). Returns ids, titles, dates and page URLs."
    parameters = {
        "type": "object",
        "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 20}},
        "required": ["query"],
    }

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        query = need_str(arguments, "query")
        limit = clamp(arguments.get("limit"), 1, 20, 8)
        api = self.hub.api(ctx)
        papers = await self.hub.call("search papers", lambda: list(api.list_papers(query=query, limit=limit)))
        papers = papers[:limit]
        if not papers:
            return f"No papers found for {query!r}."
        lines = [f"{len(papers)} paper(s) for {query!r}:"]
        for p in papers:
            date = p.published_at.date().isoformat() if p.published_at else "?"
            upvotes = f" upvotes={p.upvotes}" if p.upvotes is not None else ""
            lines.append(f"- [{p.id}] {p.title} ({date}){upvotes} {self.hub.endpoint}/papers/{p.id}")
        return "\n".join(lines)


class PaperDetailsTool(Tool):
    name = "paper_details"
    description = ("Read one Hugging Face paper page by arXiv id: title, authors, abstract, and models on the "
                   "Hub linked to it.")
    parameters = {"type": "object", "properties": {"paper_id": {"type": "string", "description": "e.g. 2502.09992"}},
                  "required": ["paper_id"]}

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        paper_id = need_str(arguments, "paper_id").removeprefix("arxiv:").removeprefix("https://arxiv.org/abs/")
        api = self.hub.api(ctx)
        paper = await self.hub.call(f"read paper {paper_id}", api.paper_info, paper_id)
        models = (paper.linked_models or [])[:8]
        authors = ", ".join(a.name for a in (paper.authors or [])[:12] if getattr(a, "name", None))
        lines = [f"{paper.title} — {self.hub.endpoint}/papers/{paper.id}", f"arXiv: https://arxiv.org/abs/{paper.id}"]
        if paper.published_at:
            lines.append(f"published: {paper.published_at.date().isoformat()}")
        if authors:
            lines.append(f"authors: {authors}")
        if paper.upvotes is not None:
            lines.append(f"upvotes: {paper.upvotes}")
        if getattr(paper, "github_repo", None):
            lines.append(f"code: {paper.github_repo}")
        if getattr(paper, "ai_summary", None):
            lines.append(f"summary: {paper.ai_summary}")
        if paper.summary:
            lines.append(f"abstract: {paper.summary}")
        if models:
            lines.append("models linked to it: " + ", ".join(f"{m.id} ({self.hub.repo_url(m.id)})" for m in models))
        return "\n".join(lines)
