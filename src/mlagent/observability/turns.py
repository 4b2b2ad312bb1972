"""A turn's life, observed from the events it appends: log lines, metrics and spans.

Every event of a response passes through `EventWriter.emit`, which calls `observe`; the
lifecycle events say when a turn starts, resumes, pauses, is cancelled or ends, an
`llm_call` event carries a model call's model, tokens, latency and cost, and an `mcp_call`
item (the agent's own tool run) and its `tool_log` bracket a tool call (a `function_call`
item is a client's tool, run by the client after the response ends: not timed here). So the
runtime needs no instrumentation of its own beyond that one call (and `queued`, for the
queue wait).

One log line (logger `mlagent.turns`) per transition, with the fields in `extra` (keys of
the JSON line; in text format the message says them too):
  turn.start / turn.resume   the run began (resume: after an approval)
  turn.pause                 it waits for an approval (`incomplete` / `approval_required`)
  turn.cancel                it was cancelled
  turn.end                   it completed, failed, or was ended by a restart (`incomplete`)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..events.types import KNOWN_EVENT_TYPES
from . import context, metrics, tracing

log = logging.getLogger("mlagent.turns")
MAX_TRACKED = 10_000  # turns this process follows at once; far above the worker concurrency


@dataclass
class _Run:
    started: float
    account: str | None
    surface: str
    span: Any = None
    llm_cost_usd: float = 0.0
    tools: dict[str, tuple[float, Any]] = field(default_factory=dict)  # call id -> (started, span)


_runs: dict[str, _Run] = {}
_queued: dict[str, float] = {}
_resuming: set[str] = set()


def queued(turn_id: str) -> None:
    """The runner accepted `turn_id` (new, or continuing after an approval)."""
    if len(_queued) >= MAX_TRACKED:
        _queued.clear()
    _queued[turn_id] = time.monotonic()


def observe(turn_id: str, state: Any, event: Any) -> None:
    """Called with each event as it is appended (`state` is the response after it). Never
    raises: a fault here must not fail the turn it watches."""
    try:
        _observe(turn_id, state, event)
    except Exception:
        log.exception("observing %s of %s failed", getattr(event, "type", "?"), turn_id)


def _observe(turn_id: str, state: Any, event: Any) -> None:
    kind = event.type
    metrics.EVENTS.labels(kind if kind in KNOWN_EVENT_TYPES else metrics.OTHER).inc()
    if kind == "response.in_progress":
        _start(turn_id, state)
    elif kind == "response.llm_call":
        _llm_call(turn_id, event)
    elif kind == "response.output_item.added" and getattr(event.item, "type", None) == "mcp_call":
        _tool_started(turn_id, event.item)
    elif kind == "response.tool_log":
        _tool_returned(turn_id, event)
    elif kind == "response.queued":
        _resuming.add(turn_id)  # only an approval re-queues a response through a writer
    elif kind in ("response.completed", "response.failed", "response.cancelled", "response.incomplete"):
        _stop(turn_id, state)


def _fields(turn_id: str, state: Any, run: _Run | None) -> dict[str, Any]:
    return {"response_id": turn_id, "session_id": state.session_id, "model": state.model,
            "account": (run.account if run else None) or context.account.get(),
            "surface": run.surface if run else metrics.surface_label(context.surface.get())}


def _start(turn_id: str, state: Any) -> None:
    resumed = turn_id in _resuming
    _resuming.discard(turn_id)
    since = _queued.pop(turn_id, None)
    wait = time.monotonic() - since if since is not None else None
    if wait is not None:
        metrics.QUEUE_WAIT.observe(wait)
    if len(_runs) >= MAX_TRACKED:
        _runs.clear()
    run = _Run(time.monotonic(), context.account.get(), metrics.surface_label(context.surface.get()))
    _runs[turn_id] = run
    metrics.TURNS_STARTED.labels(run.surface, "resume" if resumed else "start").inc()
    metrics.TURNS_RUNNING.inc()
    run.span = tracing.start_span("invoke_agent ml-agent", {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "ml-agent",
        "gen_ai.conversation.id": state.session_id, "gen_ai.response.id": turn_id,
        "gen_ai.request.model": state.model, "mlagent.surface": run.surface})
    what = "resume" if resumed else "start"
    fields = _fields(turn_id, state, run)
    fields.update(event=f"turn.{what}", queue_wait_s=round(wait, 4) if wait is not None else None)
    log.info("turn %s %s session=%s model=%s account=%s surface=%s", what, turn_id, state.session_id, state.model,
             fields["account"], run.surface, extra=fields)


def _stop(turn_id: str, state: Any) -> None:
    run = _runs.pop(turn_id, None)
    _queued.pop(turn_id, None)
    _resuming.discard(turn_id)
    status = state.status
    reason = state.incomplete_details.reason if state.incomplete_details is not None else None
    if status == "incomplete" and reason == "approval_required":
        status = "paused"
    duration = time.monotonic() - run.started if run is not None else None
    surface = run.surface if run else metrics.surface_label(context.surface.get())
    metrics.TURNS.labels(status, surface).inc()
    if run is not None and duration is not None:
        metrics.TURNS_RUNNING.dec()
        metrics.TURN_DURATION.labels(status).observe(duration)
    code = state.error.code if state.error is not None else None
    if status == "failed":
        metrics.TURN_FAILURES.labels(code or "unknown").inc()
    usage = state.usage
    session_cost = usage.cost.total_usd if usage is not None and usage.cost is not None else None
    what = {"paused": "pause", "cancelled": "cancel"}.get(status, "end")
    fields = _fields(turn_id, state, run)
    fields.update(event=f"turn.{what}", status=state.status, reason=reason, error_code=code,
                  duration_s=round(duration, 4) if duration is not None else None,
                  llm_cost_usd=round(run.llm_cost_usd, 6) if run else None, session_cost_usd=session_cost,
                  input_tokens=usage.input_tokens if usage else None,
                  output_tokens=usage.output_tokens if usage else None)
    level = logging.WARNING if status == "failed" else logging.INFO
    log.log(level, "turn %s %s status=%s%s duration=%ss session_cost=$%s", what, turn_id, state.status,
            f" ({reason or code})" if (reason or code) else "", fields["duration_s"], session_cost, extra=fields)
    if run is not None:
        for _started, span in run.tools.values():
            tracing.end_span(span, {"mlagent.tool.outcome": "not_run"})  # paused before it ran, or cut off
        tracing.end_span(run.span, {"gen_ai.usage.input_tokens": fields["input_tokens"],
                                    "gen_ai.usage.output_tokens": fields["output_tokens"],
                                    "mlagent.status": state.status},
                         error=code if status == "failed" else None)


def _llm_call(turn_id: str, event: Any) -> None:
    metrics.llm_call(event.model, event.latency_ms, event.input_tokens, event.output_tokens, event.cost_usd)
    run = _runs.get(turn_id)
    if run is not None and event.cost_usd:
        run.llm_cost_usd += event.cost_usd
    if run is not None and tracing.enabled():
        end = time.time_ns()
        span = tracing.start_span(f"chat {event.model}", {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": event.model,
            "gen_ai.response.model": event.model, "gen_ai.usage.input_tokens": event.input_tokens,
            "gen_ai.usage.output_tokens": event.output_tokens,
            "gen_ai.response.finish_reasons": [event.finish_reason] if event.finish_reason else None,
            "gen_ai.agent.name": event.agent, "mlagent.cost_usd": event.cost_usd,
        }, parent=run.span, start_ns=end - int(event.latency_ms * 1e6), kind="CLIENT")
        tracing.end_span(span, end_ns=end)


def _tool_started(turn_id: str, item: Any) -> None:
    run = _runs.get(turn_id)
    if run is None or item.status != "in_progress":
        return
    span = tracing.start_span(f"execute_tool {metrics.tool_label(item.name)}", {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": metrics.tool_label(item.name),
        "gen_ai.tool.call.id": item.call_id, "gen_ai.tool.type": "function"}, parent=run.span)
    run.tools[item.call_id] = (time.monotonic(), span)


def _tool_returned(turn_id: str, event: Any) -> None:
    run = _runs.get(turn_id)
    started, span = run.tools.pop(event.call_id, (None, None)) if run is not None else (None, None)
    outcome = outcome_of(event.text)
    metrics.tool_call(event.name, outcome, time.monotonic() - started if started is not None else None)
    tracing.end_span(span, {"mlagent.tool.outcome": outcome}, error="tool_error" if outcome == "error" else None)


def outcome_of(output: str) -> str:
    """ok, error (the tool reported a failure to the model) or denied (the user declined it)."""
    if output.startswith("Error:"):
        return "error"
    if output.startswith("Not run: the user denied"):
        return "denied"
    return "ok"
