"""A tiny OTLP/HTTP trace receiver: real HTTP, decodes the protobuf export requests and
keeps the spans, so a test can check what the server exported."""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .serve import BackgroundServer


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class FakeOtlp:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        app = FastAPI()

        @app.post("/v1/traces")
        async def traces(request: Request) -> Response:
            body = await request.body()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            export = ExportTraceServiceRequest.FromString(body)
            self.requests += 1
            for rs in export.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(Span(
                            name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(), kind=s.kind, start_ns=s.start_time_unix_nano,
                            end_ns=s.end_time_unix_nano, status_code=s.status.code,
                            attributes={a.key: _value(a.value) for a in s.attributes}, resource=resource))
            return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

        self._server = BackgroundServer(app)
        self.url = self._server.url

    def start(self) -> FakeOtlp:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def wait_for(self, predicate, timeout: float = 15) -> list[Span]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.spans):
                return self.spans
            time.sleep(0.05)
        return self.spans
