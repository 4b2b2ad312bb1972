"""`/v1/sessions/{id}`: a user ends their own session (runtime/session_end.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..runtime.session_end import end_session
from .deps import HfCaller, Svc

router = APIRouter(prefix="/v1", tags=["responses"])


@router.delete("/sessions/{session_id}")
async def delete_session(session_id: str, caller: HfCaller, svc: Svc) -> Response:
    ended = await end_session(svc.responses, caller, session_id)
    return Response(ended.model_dump_json(), media_type="application/json")
