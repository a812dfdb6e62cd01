"""Ingestion: an event is acknowledged (202) only once it is in the durable log."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from app.api import shop_key
from app.api.deps import ServiceDep, SettingsDep
from app.errors import TooLarge
from app.schemas import BatchAck, Event, EventAck, EventBatch, Problem

router = APIRouter(prefix="/v1/events", tags=["events"], **shop_key.GUARD)

_ERRORS = {
    503: {
        "model": Problem,
        "description": "event log unreachable, or at a bound (Redis's memory, the stream's "
        "length, the event ids remembered): nothing recorded unless the detail says it may "
        "have been; retry after Retry-After",
    },
}


def _accepted(body: BaseModel) -> Response:
    """202 with a body built by the handler itself: nothing to validate a second time."""
    return Response(
        body.model_dump_json(), status_code=status.HTTP_202_ACCEPTED, media_type="application/json"
    )


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=EventAck, responses=_ERRORS)
async def post_event(event: Event, service: ServiceDep) -> Response:
    return _accepted((await service.ingest([event]))[0])


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAck,
    responses={**_ERRORS, 413: {"model": Problem, "description": "more than max_batch_events"}},
)
async def post_events(batch: EventBatch, service: ServiceDep, settings: SettingsDep) -> Response:
    """Up to ``max_batch_events`` events (default 1,000), logged in order in one step."""
    if len(batch.events) > settings.max_batch_events:
        raise TooLarge(
            f"{len(batch.events)} events in one batch; at most {settings.max_batch_events}"
        )
    acks = await service.ingest(batch.events)
    logged = sum(a.status == "logged" for a in acks)
    return _accepted(
        BatchAck(
            logged=logged,
            duplicates=len(acks) - logged,
            unknown_items=sum(not a.known_item for a in acks),
            results=acks,
        )
    )
