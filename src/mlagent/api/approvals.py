"""`POST /v1/responses/{id}/approvals`: answer a response paused on `approval_required`.

The decision applies to the whole pending batch; the same response id continues.
The caller's token is re-attached to the session (a pause may outlive the server)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import Response

from ..runtime.approvals import ApprovalRequest
from .deps import HfCaller, Svc
from .openapi import V1_ERRORS

router = APIRouter(prefix="/v1", tags=["approvals"], responses=V1_ERRORS)


@router.post("/responses/{response_id}/approvals")
async def submit_approval(
    response_id: str, caller: HfCaller, svc: Svc, body: Annotated[ApprovalRequest, Body()]
) -> Response:
    result = await svc.approvals.submit(caller, response_id, body)
    return Response(result.model_dump_json(), media_type="application/json")
