"""OpenTelemetry traces, only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-specific
variable) is set: then a span per turn, per LLM call and per tool call, named and
attributed after the GenAI semantic conventions, is exported over OTLP/HTTP (protobuf).
Unset, the SDK is never imported and every hook is a no-op.

Spans are made from the turn's events as they are appended (see `turns.py`); an LLM
call's span is back-dated by its measured latency.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger("mlagent.tracing")
_tracer: Any = None
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def setup(service_name: str = "mlagent") -> bool:
    """Install the exporter when the environment asks for one. Idempotent."""
    global _tracer, _provider
    if _tracer is not None:
        return True
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint, headers: OTEL_* variables
    trace.set_tracer_provider(_provider)
    _tracer = trace.get_tracer("mlagent")
    log.info("tracing: exporting spans over OTLP/HTTP to %s",
             os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
    return True


def shutdown() -> None:
    """Flush what is buffered (at server stop)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def start_span(name: str, attributes: dict[str, Any], parent: Any = None, start_ns: int | None = None,
               kind: str = "INTERNAL") -> Any:
    """A started span (None when tracing is off). `parent` is another span from here."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    ctx = trace.set_span_in_context(parent) if parent is not None else None
    return _tracer.start_span(name, context=ctx, kind=getattr(trace.SpanKind, kind),
                              attributes={k: v for k, v in attributes.items() if v is not None},
                              start_time=start_ns)


def end_span(span: Any, attributes: dict[str, Any] | None = None, error: str | None = None,
             end_ns: int | None = None) -> None:
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    for key, value in (attributes or {}).items():
        if value is not None:
            span.set_attribute(key, value)
    if error is not None:
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=end_ns)
