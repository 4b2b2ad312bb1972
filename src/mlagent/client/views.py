"""Whole objects as the commands print them: a response (`show`), a page of responses
(`ls`), usage, and the pending-approval panel the live stream also shows."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .text import (
    artifact_name,
    call_key,
    call_signature,
    duration,
    link,
    money,
    response_text,
    scrub,
    session_cost,
    short,
    tool_line,
    waiting_line,
)

STATUS_STYLE = {"completed": "green", "failed": "red", "cancelled": "yellow", "incomplete": "yellow",
                "in_progress": "cyan", "queued": "dim"}


def when(timestamp: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(float(timestamp)))
    except (TypeError, ValueError, OverflowError):
        return "?"


def approval_panel(event: dict[str, Any]) -> RenderableType:
    """The pending batch (an `approval_required` event or a response's `pending_approval`)."""
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    for col in ("kind", "action", "estimate"):
        table.add_column(col, justify="right" if col == "estimate" else "left")
    for action in event.get("actions") or []:
        estimate = money(action.get("estimate_usd")) if action.get("priced", True) else "unpriced"
        table.add_row(str(action.get("kind", "")), call_signature(str(action.get("name", "")),
                                                                  action.get("arguments"), 90), estimate)
    b = event.get("budget") or {}
    budget = Text(f"cap {money(b.get('cap'))} · spent {money(b.get('spent'))} · remaining "
                  f"{money(b.get('remaining'))} · this batch ≈ {money(b.get('estimate'))}")
    return Panel(Group(table, budget), title="approval required", title_align="left", border_style="yellow")


def response_view(response: dict[str, Any]) -> RenderableType:
    """A response object as `mlagent show` prints it."""
    response = scrub(response)
    status = str(response.get("status"))
    parts: list[RenderableType] = []
    head = Text.assemble((str(response.get("id")), "bold"), ("  ", ""), (status, STATUS_STYLE.get(status, "")),
                         (f"  {response.get('model', '')}", "cyan"), (f"  {when(response.get('created_at'))}", "dim"))
    parts.append(head)
    facts = f"session {response.get('session_id')}  cap {money(response.get('max_cost_usd'))}"
    if response.get("previous_response_id"):
        facts += f"  after {response['previous_response_id']}"
    parts.append(Text(facts, style="dim"))
    calls: dict[str, dict[str, Any]] = {}
    for item in response.get("output") or []:
        kind = item.get("type")
        if kind == "message":
            text = "".join(p.get("text", "") for p in item.get("content") or [])
            if text:
                parts.append(Markdown(text))
        elif kind == "mcp_call":
            ms = item.get("duration_ms")
            parts.append(tool_line(str(item.get("name", "?")), item.get("arguments"), item.get("output") or "",
                                   item.get("status"), ms / 1000 if isinstance(ms, (int, float)) else None))
        elif kind == "function_call":
            calls[call_key(item)] = item
        elif kind == "function_call_output":  # an old log's tool run: the pair of a function_call
            call = calls.pop(call_key(item), {})
            parts.append(tool_line(str(call.get("name", "?")), call.get("arguments"), item.get("output", "")))
    for call in calls.values() if status == "completed" else ():  # unanswered: client tools
        parts.append(waiting_line(str(call.get("name", "?")), call.get("arguments")))
    for artifact in response.get("artifacts") or []:
        line = Text.assemble(("↗ ", "bold cyan"), (str(artifact.get("type")), "cyan"),
                             (f"  {artifact_name(artifact)}", "bold"))
        if artifact.get("url"):
            line.append(f"  {artifact['url']}", link(artifact["url"]))
        parts.append(line)
    if response.get("error"):
        err = response["error"]
        parts.append(Text(f"✘ {err.get('code')}: {err.get('message')}", style="bold red"))
    if response.get("incomplete_details"):
        parts.append(Text(f"⏸ incomplete: {response['incomplete_details'].get('reason')}", style="bold yellow"))
    if response.get("pending_approval"):
        parts.append(approval_panel(response["pending_approval"]))
    usage = response.get("usage") or {}
    cost = usage.get("cost") or {}
    if usage:
        summary = f"tokens {usage.get('input_tokens', 0):,} in / {usage.get('output_tokens', 0):,} out"
        if cost:
            summary += (f" · session spend {money(cost.get('total_usd'))} of {money(cost.get('max_cost_usd'))}"
                     f" (inference {money(cost.get('inference_usd'))}, jobs {money(cost.get('jobs_usd'))},"
                     f" sandboxes {money(cost.get('sandboxes_usd'))})")
        parts.append(Text(summary, style="dim"))
    return Group(*parts)


def response_table(responses: list[dict[str, Any]], width: int = 80) -> RenderableType:
    """`mlagent ls`: the listing's items (response objects plus `updated_at` and `input_preview`).
    Ids and statuses are never cut; the task column comes only when the width leaves room."""
    if not responses:
        return Text("no responses yet", style="dim")
    responses = scrub(responses)
    columns = ["id", "status", "created", "took", "spend"] + (["task"] if width >= 110 else [])
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for col in columns:
        table.add_column(col, no_wrap=True, overflow="ellipsis", justify="right" if col in ("took", "spend") else "left",
                         min_width={"id": 37, "status": 11, "created": 11}.get(col))
    for r in responses:
        status = str(r.get("status"))
        cost = session_cost(r) or {}
        took = ""
        if isinstance(r.get("updated_at"), (int, float)) and isinstance(r.get("created_at"), (int, float)):
            took = duration(max(0.0, r["updated_at"] - r["created_at"]))
        row: list[RenderableType] = [str(r.get("id")), Text(status, style=STATUS_STYLE.get(status, "")), when(r.get("created_at"))[5:],
               took, money(cost.get("total_usd")) if cost else ""]
        if "task" in columns:
            row.append(short(str(r.get("input_preview") or response_text(r)), 80))
        table.add_row(*row)
    return table


def usage_view(usage: dict[str, Any]) -> RenderableType:
    usage = scrub(usage)
    totals = usage.get("totals") or {}
    lower = " (lower bound: some calls had no price)" if totals.get("cost_is_lower_bound") else ""
    head = Text(f"{totals.get('request_count', 0)} LLM calls · {totals.get('total_tokens', 0):,} tokens "
                f"({totals.get('prompt_tokens', 0):,} in / {totals.get('completion_tokens', 0):,} out) · "
                f"{money(totals.get('total_cost'))}{lower} · active sessions: {usage.get('active_threads', 0)}")
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for col in ("model", "calls", "tokens", "cost"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for m in usage.get("by_model") or []:
        table.add_row(str(m.get("model")), str(m.get("request_count", 0)), f"{m.get('total_tokens', 0):,}",
                      money(m.get("total_cost")))
    return Group(head, table) if usage.get("by_model") else head
