"""What a turn looks like while it runs in a terminal (rich), or to a script (one JSON event a line).

Events are read as plain dicts and unknown types are ignored, so a newer server's extra
events or fields never break an older client. Lines that are done (a tool call with its
result, a job status, an artifact, a finished answer) scroll above a live footer that
holds what is still moving: the plan, the answer as it streams, running tool calls with
their elapsed time, and the budget.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .text import (
    TOOL_CALLS,
    artifact_name,
    call_key,
    call_signature,
    duration,
    link,
    money,
    scrub,
    session_cost,
    short,
    tool_line,
    waiting_line,
)
from .views import approval_panel

# A replayed log arrives in one burst; once events stop coming this long, the rest is live
# and tool-call durations measured by this client mean something.
LIVE_GAP_SECONDS = 0.5

@dataclass
class Call:
    name: str
    arguments: str
    started: float | None  # monotonic time this client saw it start (None: seen in a replay)
    kind: str = "mcp_call"  # the output item's type
    spinner: Spinner = field(default_factory=lambda: Spinner("dots", style="magenta"))


@dataclass
class TurnState:
    """What the events so far say about the turn; renderers read it."""

    response: dict[str, Any] | None = None
    status: str | None = None
    reason: str | None = None  # incomplete_details.reason
    plan: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, Call] = field(default_factory=dict)
    text: str = ""  # the answer streaming now
    spent: float | None = None
    cap: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    pending: dict[str, Any] | None = None  # the last response.approval_required
    artifacts: set[str] = field(default_factory=set)
    last_seq: int = -1

    @property
    def response_id(self) -> str | None:
        return (self.response or {}).get("id")

    def lifecycle(self, response: dict[str, Any]) -> None:
        self.response = response
        self.status = response.get("status")
        self.reason = (response.get("incomplete_details") or {}).get("reason")
        if response.get("max_cost_usd") is not None:
            self.cap = float(response["max_cost_usd"])
        cost = session_cost(response)
        if cost:
            self.cost(cost)

    def cost(self, cost: dict[str, Any]) -> None:
        if cost.get("total_usd") is not None:
            self.spent = float(cost["total_usd"])
        if cost.get("max_cost_usd"):
            self.cap = float(cost["max_cost_usd"])


class Renderer:
    """The interface the commands drive; `TerminalRenderer` and `JsonRenderer` implement it."""

    def __init__(self, replaying: bool = False) -> None:
        self.state = TurnState()
        self.replaying = replaying
        self._last_arrival = time.monotonic()
        # The live footer is drawn by rich's refresh thread: it and `handle` take turns on the state.
        self._lock = threading.RLock()

    scrub = False  # a terminal renderer drops control characters from what the server sent

    def prime(self, response: dict[str, Any]) -> None:
        """Start from a polled response object (`attach`: the events may start mid-turn)."""
        with self._lock:
            self.state.lifecycle(scrub(response) if self.scrub else response)

    def handle(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._handle(scrub(event) if self.scrub else event)

    def _handle(self, event: dict[str, Any]) -> None:
        now = time.monotonic()
        if self.replaying and now - self._last_arrival >= LIVE_GAP_SECONDS:
            self.replaying = False
        self._last_arrival = now
        kind = event.get("type", "")
        s = self.state
        s.last_seq = event.get("sequence_number", s.last_seq)
        if isinstance(event.get("response"), dict):
            s.lifecycle(event["response"])
        elif kind == "response.cost.updated" and isinstance(event.get("cost"), dict):
            s.cost(event["cost"])
        elif kind == "response.plan" and isinstance(event.get("steps"), list):
            s.plan = [st for st in event["steps"] if isinstance(st, dict)]
        elif kind == "response.llm_call":
            s.tokens_in += int(event.get("input_tokens") or 0)
            s.tokens_out += int(event.get("output_tokens") or 0)
        elif kind == "response.approval_required":
            s.pending = event
        self.on_event(kind, event)

    def on_event(self, kind: str, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def retrying(self, reason: str, delay: float) -> None:
        raise NotImplementedError

    def note(self, message: str, style: str = "") -> None:
        raise NotImplementedError

    @contextmanager
    def active(self) -> Iterator[None]:
        yield


class JsonRenderer(Renderer):
    """One event a line on stdout (as the server sent it); notes go to stderr."""

    def __init__(self, replaying: bool = False) -> None:
        super().__init__(replaying)
        self.err = Console(stderr=True, highlight=False)

    def on_event(self, kind: str, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def retrying(self, reason: str, delay: float) -> None:
        self.err.print(f"stream interrupted ({reason}); resuming in {delay:.1f}s", style="yellow")

    def note(self, message: str, style: str = "") -> None:
        self.err.print(message, style=style)


class TerminalRenderer(Renderer):
    scrub = True

    def __init__(self, console: Console, replaying: bool = False) -> None:
        super().__init__(replaying)
        self.console = console
        self.live = console.is_terminal  # a pipe or a file gets plain lines, no redrawn footer
        self._spinner = Spinner("dots")
        self._plan_printed: list[dict[str, Any]] = []
        self._started_printing_text = False
        self._header_printed = False
        self._last_footer: RenderableType = Text("")

    def prime(self, response: dict[str, Any]) -> None:
        super().prime(response)
        self._header(scrub(response))

    # -- the scrolling transcript ------------------------------------------------------
    def print(self, *things: RenderableType | str, **kw: Any) -> None:
        self.console.print(*things, **kw)

    def note(self, message: str, style: str = "") -> None:
        self.line(Text(message, style=style))

    def line(self, text: Text) -> None:
        """One transcript line: never wrapped by rich (the terminal wraps it if it must)."""
        self.console.print(text, soft_wrap=True)

    def retrying(self, reason: str, delay: float) -> None:
        self.note(f"↻ connection lost ({short(reason, 80)}); resuming after event {self.state.last_seq} "
                  f"in {delay:.1f}s", "yellow")

    def on_event(self, kind: str, event: dict[str, Any]) -> None:
        s = self.state
        if kind == "response.created":
            self._header(event["response"])
        elif kind in ("response.queued", "response.in_progress"):
            self.note(f"· {kind.removeprefix('response.').replace('_', ' ')}", "dim")
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") in TOOL_CALLS:
                started = None if self.replaying else time.monotonic()
                s.calls[call_key(item)] = Call(item.get("name", "?"), item.get("arguments", ""), started, item["type"])
            elif item.get("type") == "message":
                s.text = ""
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "mcp_call":  # the agent's own tool run, done
                self._call_done(call_key(item), item.get("output") or "", item.get("duration_ms"),
                                item.get("status"), item.get("arguments"))
            elif item.get("type") == "function_call" and call_key(item) in s.calls:
                s.calls[call_key(item)].arguments = item.get("arguments", "")
            elif item.get("type") == "function_call_output":  # an old log's tool run
                self._call_done(call_key(item), item.get("output", ""))
        elif kind == "response.output_text.delta":
            delta = event.get("delta", "")
            s.text += delta
            if not self.live:
                self.console.file.write(delta)
                self.console.file.flush()
                self._started_printing_text = True
        elif kind == "response.output_text.done":
            text = event.get("text", s.text)
            s.text = ""
            if self.live:
                self.print(Markdown(text))
            elif self._started_printing_text:
                self.console.file.write("\n")
                self._started_printing_text = False
            else:
                self.print(text, markup=False, highlight=False)
        elif kind == "response.plan" and not self.live:
            self._print_plan()
        elif kind == "response.job_status":
            self._job(event)
        elif kind == "response.artifact.created":
            self._artifact(event.get("artifact") or {})
        elif kind == "response.approval_required":
            self.print(approval_panel(event))
        elif kind == "error":
            self.note(f"✘ error: {event.get('message')} ({event.get('code')})", "bold red")
        elif kind in ("response.completed", "response.failed", "response.cancelled", "response.incomplete"):
            self._final(event["response"])

    def _header(self, response: dict[str, Any]) -> None:
        if self._header_printed:
            return
        self._header_printed = True
        line = Text.assemble(("● ", "bold cyan"), (response.get("id", "?"), "bold"),
                             (f"  {response.get('model', '')}", "cyan"),
                             (f"  cap {money(response.get('max_cost_usd'))}", ""),
                             (f"  session {response.get('session_id', '')}", "dim"))
        if response.get("previous_response_id"):
            line.append(f"  after {response['previous_response_id']}", "dim")
        self.line(line)

    def _call_done(self, call_id: str, output: str, duration_ms: Any = None, status: Any = None,
                   arguments: Any = None) -> None:
        call = self.state.calls.pop(call_id, None) or Call("?", "", None)
        if isinstance(arguments, str):
            call.arguments = arguments
        took = None
        if isinstance(duration_ms, (int, float)):  # the server's measure, replays included
            took = duration_ms / 1000
        elif call.started is not None:
            took = time.monotonic() - call.started
        self.line(tool_line(call.name, call.arguments, output, status, took, 90))

    def _client_calls(self) -> None:
        """`function_call` items still open when the turn ends are client tools to answer."""
        for key, call in list(self.state.calls.items()):
            if call.kind == "function_call":
                self.line(waiting_line(call.name, call.arguments))
                del self.state.calls[key]

    def _job(self, event: dict[str, Any]) -> None:
        stage = str(event.get("stage") or "?")
        style = {"COMPLETED": "green", "ERROR": "red", "CANCELED": "yellow", "CANCELLED": "yellow"}.get(stage, "blue")
        line = Text.assemble(("⚙ job ", "bold"), (str(event.get("job_id", "?")), ""), ("  ", ""), (stage, style))
        if event.get("message"):
            line.append(f"  {short(str(event['message']), 80)}", "dim")
        if event.get("url"):
            line.append(f"  {event['url']}", link(event["url"]))
        self.line(line)

    def _artifact(self, artifact: dict[str, Any]) -> None:
        key = json.dumps(artifact, sort_keys=True)
        if key in self.state.artifacts:
            return
        self.state.artifacts.add(key)
        line = Text.assemble(("↗ ", "bold cyan"), (str(artifact.get("type", "artifact")), "cyan"),
                             (f"  {artifact_name(artifact)}", "bold"))
        if artifact.get("status"):
            line.append(f"  {artifact['status']}", "dim")
        if artifact.get("url"):
            line.append(f"  {artifact['url']}", link(artifact["url"]))
        self.line(line)

    def _print_plan(self) -> None:
        if self.state.plan != self._plan_printed:
            self._plan_printed = list(self.state.plan)
            self.print(self.plan_view())

    def _final(self, response: dict[str, Any]) -> None:
        s = self.state
        status = response.get("status")
        if status == "completed":
            self._client_calls()
        if self.live and s.plan:
            self.print(self.plan_view())
        budget = f"session spend {money(s.spent)} of {money(s.cap)}" if s.spent is not None else ""
        if status == "completed":
            self.note(f"✔ completed  {budget}", "bold green")
        elif status == "failed":
            err = response.get("error") or {}
            self.note(f"✘ failed: {err.get('message', '')} [{err.get('code', '')}]  {budget}", "bold red")
        elif status == "cancelled":
            self.note(f"■ cancelled  {budget}", "bold yellow")
        elif status == "incomplete":
            reason = (response.get("incomplete_details") or {}).get("reason")
            what = "waiting for approval" if reason == "approval_required" else f"incomplete ({reason})"
            self.note(f"⏸ paused: {what}  {budget}", "bold yellow")

    # -- renderables -------------------------------------------------------------------
    def plan_view(self) -> RenderableType:
        marks = {"completed": ("☑", "green"), "in_progress": ("▶", "bold yellow"), "pending": ("☐", "dim")}
        table = Table.grid(padding=(0, 1))
        for step in self.state.plan:
            mark, style = marks.get(str(step.get("status")), ("☐", ""))
            table.add_row(Text(mark, style=style), Text(str(step.get("step", "")), style=style))
        return Panel(table, title="plan", title_align="left", border_style="dim", expand=False)

    def footer(self) -> RenderableType:
        """Called by rich's refresh thread, which holds rich's own lock while `handle` may hold
        ours and wait for rich's (printing a line): never wait here; draw the last footer again."""
        if not self._lock.acquire(blocking=False):
            return self._last_footer
        try:
            self._last_footer = self._footer()
            return self._last_footer
        finally:
            self._lock.release()

    def _footer(self) -> RenderableType:
        s = self.state
        parts: list[RenderableType] = []
        if s.plan:
            parts.append(self.plan_view())
        if s.text:
            tail = "\n".join(s.text.splitlines()[-max(4, self.console.size.height - 14):])
            parts.append(Markdown(tail))
        for call in s.calls.values():  # started, no result yet
            took = f"  {duration(time.monotonic() - call.started)}" if call.started is not None else ""
            call.spinner.text = Text.assemble((call_signature(call.name, call.arguments), "bold"), (took, "magenta"))
            parts.append(call.spinner)
        status = Table.grid(padding=(0, 1))
        self._spinner.text = Text(f"{s.status or 'connecting'}", style="cyan")
        row: list[RenderableType] = [self._spinner]
        if s.cap:
            spent = s.spent or 0.0
            row += [Text("budget"), ProgressBar(total=s.cap, completed=min(spent, s.cap), width=24),
                    Text(f"{money(spent)} / {money(s.cap)}", style="red" if spent >= s.cap else "")]
        if s.tokens_in or s.tokens_out:
            row.append(Text(f"tokens {s.tokens_in:,} in / {s.tokens_out:,} out", style="dim"))
        status.add_row(*row)
        parts.append(status)
        return Group(*parts)

    @contextmanager
    def active(self) -> Iterator[None]:
        if not self.live:
            yield
            return
        live = Live(console=self.console, get_renderable=self.footer, refresh_per_second=8, transient=True,
                    redirect_stdout=False, redirect_stderr=False)
        with live:
            yield
