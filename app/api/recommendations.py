"""Recommendations for a visit the service knows, or for a list of items sent by the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api import shop_key
from app.api.deps import ServiceDep, SessionIdPath, SettingsDep, check_n, json_response
from app.errors import TooLarge
from app.schemas import Problem, Recommendations, StatelessRequest
from app.serving.service import Query as RecQuery

router = APIRouter(tags=["recommendations"], **shop_key.GUARD)

SESSION_PATH = "/v1/sessions/{session_id}/recommendations"
DIVERSITY_MAX = 10.0  # the greedy aggregator's lambda; the fast path keeps to the same limit

_ERRORS = {
    503: {
        "model": Problem,
        "description": "no model loaded yet, or the scoring threads are busy: retry after "
        "Retry-After",
    },
}


@router.get(
    SESSION_PATH,
    response_model=Recommendations,
    responses=_ERRORS,
)
async def session_recommendations(
    service: ServiceDep,
    session_id: SessionIdPath,
    n: Annotated[int, Query(ge=1, le=1000)] = 20,
    diversity: Annotated[float, Query(ge=0.0, le=DIVERSITY_MAX)] = 0.0,
    exclude_seen: bool = True,
) -> Response:
    """Top-n for the visit, from its model state; ``fallback`` says when popularity stood in."""
    check_n(n, service.settings)
    return json_response(
        await service.for_session(session_id, RecQuery(n, diversity, exclude_seen))
    )


@router.post(
    "/v1/recommendations",
    response_model=Recommendations,
    responses={**_ERRORS, 413: {"model": Problem, "description": "more than max_request_items"}},
)
async def stateless_recommendations(
    body: StatelessRequest, service: ServiceDep, settings: SettingsDep
) -> Response:
    """For shops that keep the visit themselves: the state is computed from ``items``."""
    if len(body.items) > settings.max_request_items:
        raise TooLarge(f"{len(body.items)} items; at most {settings.max_request_items} per request")
    check_n(body.n, settings, "body")
    q = RecQuery(body.n, body.diversity, body.exclude_seen)
    return json_response(await service.stateless(body.items, q))
