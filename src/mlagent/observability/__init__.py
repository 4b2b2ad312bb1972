"""Operability: Prometheus metrics, structured logs with request ids, and OpenTelemetry
traces (docs/operating.md). A leaf package: it imports only `events`, so any layer may
call its one-line hooks."""
