"""`/healthz`, `/readyz`, `/metrics`: for load balancers, orchestrators and Prometheus
(docs/operating.md). Unauthenticated (but `/metrics` takes an optional bearer token,
`MLAGENT_METRICS_TOKEN`), cheap, and outside the API surfaces' envelopes."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..errors import ServiceError
from ..observability import metrics
from ..observability.probes import Probes

router = APIRouter(tags=["operations"])
def _probes(request: Request) -> Probes | None:
    return getattr(request.app.state, "probes", None)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable, migrations at head, PG listener, gRPC",
            responses={503: {"description": "Not ready; `failed` names the checks that failed"}})
async def readyz(request: Request) -> JSONResponse:
    probes = _probes(request)
    if probes is None:
        return JSONResponse({"status": "starting", "failed": ["startup"], "checks": {}}, status_code=503)
    checks = await probes.checks()
    operator = getattr(getattr(request.app.state, "services", None), "operator", None)
    if operator is not None and operator.stopping:
        checks["accepting_work"] = {"ok": False, "error": "the server is stopping (POST /api/v1/organism/stop)"}
    failed = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "not_ready" if failed else "ready", "failed": failed, "checks": checks}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics_endpoint(request: Request) -> Response:
    probes = _probes(request)
    if probes is not None and probes.metrics_token:
        header = request.headers.get("authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), probes.metrics_token.encode()):
            raise ServiceError(401, "unauthorized", "GET /metrics needs 'Authorization: Bearer <MLAGENT_METRICS_TOKEN>'.",
                               retryable=False)
    if probes is not None:
        await probes.refresh_counts()
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
