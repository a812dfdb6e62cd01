"""A visit as the service holds it; forgetting it."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api import shop_key
from app.api.deps import ServiceDep, SessionIdPath
from app.errors import NotFound
from app.schemas import Problem, SessionView

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], **shop_key.GUARD)

_ERRORS = {
    404: {"model": Problem, "description": "no such session (never seen, expired or deleted)"},
    503: {"model": Problem, "description": "session store unreachable"},
}


@router.get("/{session_id}", responses=_ERRORS)
async def get_session(session_id: SessionIdPath, service: ServiceDep) -> SessionView:
    rec = await service.store.get(session_id)
    if rec is None:
        raise NotFound(f"no session {session_id!r}")
    return SessionView(
        session_id=session_id,
        n_events=rec.n_events,
        items=rec.items,
        last_event=rec.last_event,
        state_version=rec.state_version,
        state_covers=rec.state_covers,
    )


@router.delete("/{session_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_session(session_id: SessionIdPath, service: ServiceDep) -> Response:
    """Forget a visit (its events stay in the log)."""
    if not await service.store.delete(session_id):
        raise NotFound(f"no session {session_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
