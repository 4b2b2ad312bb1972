"""Every Prometheus metric of the server, in one place, with the one-line calls that move them.

Label values come from small fixed sets (statuses, surfaces, outcomes) or from names the
server itself configured (model ids, tool names, job backends), never from request text or
tokens: anything unknown is counted as "other", so a caller cannot grow the series.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

OTHER = "other"
SURFACES = frozenset({"v1", "api", "ninja", "ml-api", "operator", "grpc", "deployment", OTHER})
TURN_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete", "paused"})
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

TURNS_STARTED = Counter("mlagent_turns_started_total", "Turns that began running (a resume after an approval "
                        "counts again), by surface and whether it was a resume.", ["surface", "kind"])
TURNS = Counter("mlagent_turns_total", "Turns that stopped, by status (paused: waiting for an approval; "
                "incomplete: ended by a restart) and surface.", ["status", "surface"])
TURN_FAILURES = Counter("mlagent_turn_failures_total", "Failed turns by error code.", ["code"])
TURN_DURATION = Histogram("mlagent_turn_duration_seconds", "Running time of a turn, from in_progress to its end or "
                          "pause.", ["status"], buckets=DURATION_BUCKETS)
QUEUE_WAIT = Histogram("mlagent_turn_queue_wait_seconds", "Time a turn waited between being queued in this process "
                       "and starting (a worker slot, a paused agent).", buckets=FAST_BUCKETS)
TURNS_RUNNING = Gauge("mlagent_turns_running", "Turns running in this process now.")
SSE_CLIENTS = Gauge("mlagent_sse_clients", "Open server-sent event streams on this process.")
EVENTS = Counter("mlagent_events_appended_total", "Events appended to response logs by this process, by type.",
                 ["type"])
LLM_CALLS = Counter("mlagent_llm_calls_total", "Chat-completion calls that returned, by model.", ["model"])
LLM_TOKENS = Counter("mlagent_llm_tokens_total", "Tokens of those calls, by model and direction (input, output).",
                     ["model", "direction"])
LLM_LATENCY = Histogram("mlagent_llm_call_duration_seconds", "Latency of a chat-completion call (whole stream).",
                        ["model"], buckets=DURATION_BUCKETS)
LLM_COST = Counter("mlagent_llm_cost_usd_total", "Estimated cost of those calls in USD (priced models only).",
                   ["model"])
TOOL_CALLS = Counter("mlagent_tool_calls_total", "Tool calls that returned, by tool and outcome (ok, error, "
                     "denied).", ["tool", "outcome"])
TOOL_DURATION = Histogram("mlagent_tool_call_duration_seconds", "Duration of a tool call.", ["tool"],
                          buckets=DURATION_BUCKETS)
PREDICT_LATENCY = Histogram("mlagent_predict_duration_seconds", "Latency of POST /deployment/{id}/predict, by "
                            "outcome (ok, client_error, server_error).", ["outcome"], buckets=FAST_BUCKETS)
PREDICT_ERRORS = Counter("mlagent_predict_errors_total", "Failed predictions, by HTTP status class.", ["status"])
# The children, resolved once: `labels()` takes a lock and builds a key on every call.
_PREDICT_BY_OUTCOME = {o: PREDICT_LATENCY.labels(o) for o in ("ok", "client_error", "server_error")}

_known_models: set[str] = set()
_known_tools: set[str] = set()


def know(models: Iterable[str] = (), tools: Iterable[str] = ()) -> None:
    """The model ids and tool names this server was configured with: the only label values used."""
    _known_models.update(models)
    _known_tools.update(tools)


def model_label(model: str | None) -> str:
    return model if model in _known_models else OTHER


def tool_label(name: str | None) -> str:
    return name if name in _known_tools else OTHER


def surface_label(surface: str | None) -> str:
    return surface if surface in SURFACES else OTHER


def llm_call(model: str | None, latency_ms: float, input_tokens: int, output_tokens: int,
             cost_usd: float | None) -> None:
    label = model_label(model)
    LLM_CALLS.labels(label).inc()
    LLM_TOKENS.labels(label, "input").inc(max(0, input_tokens))
    LLM_TOKENS.labels(label, "output").inc(max(0, output_tokens))
    LLM_LATENCY.labels(label).observe(max(0.0, latency_ms) / 1000)
    if cost_usd:
        LLM_COST.labels(label).inc(max(0.0, cost_usd))


def tool_call(name: str, outcome: str, seconds: float | None) -> None:
    label = tool_label(name)
    TOOL_CALLS.labels(label, outcome).inc()
    if seconds is not None:
        TOOL_DURATION.labels(label).observe(seconds)


@contextmanager
def sse_client() -> Iterator[None]:
    SSE_CLIENTS.inc()
    try:
        yield
    finally:
        SSE_CLIENTS.dec()


@contextmanager
def predict_timer() -> Iterator[None]:
    """Time one prediction; an exception with an HTTP `status` below 500 is the client's fault."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        status = getattr(exc, "status", 500)
        status = status if isinstance(status, int) else 500
        outcome = "client_error" if status < 500 else "server_error"
        PREDICT_ERRORS.labels(f"{status // 100}xx").inc()
        raise
    finally:
        _PREDICT_BY_OUTCOME[outcome].observe(time.perf_counter() - started)


# -- figures read at scrape time ------------------------------------------------------------
class Snapshot(Collector):
    """Gauges read from the process (live sessions) or the database (approvals pending,
    jobs by backend and state) when /metrics is scraped, so they are true, not counted."""

    def __init__(self) -> None:
        self.live_sessions: Callable[[], int] = lambda: 0
        self.approvals_pending: int | None = None
        self.jobs: dict[tuple[str, str, str], int] = {}

    def collect(self):
        yield GaugeMetricFamily("mlagent_live_sessions", "Sessions held live (with the caller's token in memory) "
                                "by this process.", value=self.live_sessions())
        if self.approvals_pending is not None:
            yield GaugeMetricFamily("mlagent_approvals_pending", "Responses waiting for an approval (whole "
                                    "database: the same on every replica).", value=self.approvals_pending)
        jobs = GaugeMetricFamily("mlagent_jobs", "Jobs by kind (finetune, training), backend and state (whole "
                                 "database).", labels=["kind", "backend", "state"])
        for (kind, backend, state), count in sorted(self.jobs.items()):
            jobs.add_metric([kind, backend, state], count)
        yield jobs


SNAPSHOT = Snapshot()
REGISTRY.register(SNAPSHOT)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
