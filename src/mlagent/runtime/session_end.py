"""A user ends their own session (`DELETE /v1/sessions/{id}`): its unfinished turn is
cancelled, the session is closed for good, and its live slot is released at once instead
of after the idle window. The responses stay readable; chaining onto them is 409."""

from __future__ import annotations

from pydantic import BaseModel

from ..auth.identity import Identity
from ..errors import not_found
from ..events.response import TERMINAL_STATUSES
from .service import ResponsesService

CANCEL_WAIT_SECONDS = 2.0


class SessionEnded(BaseModel):
    id: str
    object: str = "session"
    status: str = "closed"
    cancelled_response_id: str | None = None  # the turn that was queued, running or paused, if any


async def end_session(responses: ResponsesService, identity: Identity, session_id: str) -> SessionEnded:
    session = await responses.sessions.get(session_id)
    if session is None or session.account != identity.account:
        raise not_found("session", session_id)
    cancelled = None
    latest = await responses.turns.latest_for_session(session_id)
    if not session.closed:  # first, so no chained request slips in behind the cancel
        await responses.sessions.update(session_id, closed=True, pending=None)
    if latest is not None and latest.status not in TERMINAL_STATUSES:
        await responses.cancel(identity, latest.id)
        cancelled = latest.id
        await responses.wait(latest.id, CANCEL_WAIT_SECONDS)  # a running turn stops at its next step
    live = responses.live.get(session_id)
    if live is not None and not live.running:
        responses.live.evict_session(session_id)
    elif live is not None:  # still unwinding from the cancel: its slot goes the moment it stops
        live.ended = True
    return SessionEnded(id=session_id, cancelled_response_id=cancelled)
