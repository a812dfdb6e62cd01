"""Admin views for the operator dashboard: the process's own metrics, the model each API
process serves, a checkpoint's training curve.

Why apart from ``admin``: these only read what the processes and the model
directory already hold (no jobs, no activation), for the dashboard at
``/dashboard``. All need the admin bearer token like every ``/admin`` call.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from app.api.admin import VersionPath
from app.api.auth import AdminDep
from app.api.deps import ServiceDep, SettingsDep
from app.errors import NotFound
from app.metrics_summary import counters, latency_bounds_ms, route_stats
from app.schemas import MetricsSummary, Problem, ProcessView
from app.serving.roster import Roster
from training.checkpoint import list_versions

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])

_ERRORS = {
    401: {"model": Problem, "description": "no bearer token"},
    403: {"model": Problem, "description": "wrong token, or admin disabled"},
}
#: the training curve trainers write into a checkpoint (``training.publish.CURVE``)
CURVE = "training.png"


@router.get("/metrics/summary", responses=_ERRORS)
async def metrics_summary(request: Request, service: ServiceDep) -> MetricsSummary:
    """Requests, latency percentiles per route, events, fallbacks, swaps, store health."""
    sm = service.registry.active
    store_ok = await service.store.ping()
    return MetricsSummary(
        process=request.app.state.roster.process,
        taken_at=time.time(),
        model_version=sm.version if sm else None,
        model_kind=sm.kind if sm else None,
        index_items=sm.index.size if sm else None,
        index=sm.index.describe() if sm else None,
        store="ok" if store_ok else "unreachable",
        latency_bounds_ms=latency_bounds_ms(service.metrics),
        routes=route_stats(service.metrics),
        **counters(service.metrics),
    )


@router.get("/processes", responses={**_ERRORS, 503: {"model": Problem}})
async def processes(request: Request) -> list[ProcessView]:
    """Every live API process and the version it serves (with Redis; embedded: this one)."""
    roster: Roster = request.app.state.roster
    return [ProcessView(**r) for r in await asyncio.to_thread(roster.read)]


@router.get(
    "/models/{version}/training.png",
    response_class=FileResponse,
    responses={**_ERRORS, 404: {"model": Problem, "description": "no such version, or no curve"}},
)
async def training_curve(settings: SettingsDep, version: str = VersionPath) -> FileResponse:
    """The training curve the trainer drew beside the checkpoint (PNG)."""
    path = settings.model_dir / version / CURVE
    if version not in list_versions(settings.model_dir) or not path.is_file():
        raise NotFound(f"no training curve for {version}")
    return FileResponse(
        path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
