"""Ingestion: an event is acknowledged (202) only once it is in the durable log."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from app.deps import ServiceDep, SettingsDep
from app.schemas import BatchAck, Event, EventAck, EventBatch, Problem

router = APIRouter(prefix="/v1/events", tags=["events"])

_ERRORS = {
    413: {"model": Problem, "description": "body or batch too large"},
    503: {"model": Problem, "description": "event log unreachable: retry after Retry-After"},
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def post_event(event: Event, service: ServiceDep) -> EventAck:
    return (await service.ingest([event]))[0]


@router.post("/batch", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def post_events(batch: EventBatch, service: ServiceDep, settings: SettingsDep) -> BatchAck:
    """Up to ``max_batch_events`` events (default 1,000), logged in order in one step."""
    if len(batch.events) > settings.max_batch_events:
        raise HTTPException(
            413,
            f"{len(batch.events)} events in one batch; at most {settings.max_batch_events}",
        )
    acks = await service.ingest(batch.events)
    logged = sum(a.status == "logged" for a in acks)
    return BatchAck(
        logged=logged,
        duplicates=len(acks) - logged,
        unknown_items=sum(not a.known_item for a in acks),
        results=acks,
    )
