"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (nothing else is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: see the body"}})
async def readyz(service: ServiceDep) -> JSONResponse:
    """Ready when a model is loaded and the session store answers."""
    sm = service.registry.active
    store_ok = await service.store.ping()
    body = {
        "model": sm.version if sm else None,
        "model_error": service.registry.public_error,  # no paths: anyone may ask
        "store": "ok" if store_ok else "unreachable",
    }
    return JSONResponse(body, status_code=200 if sm is not None and store_ok else 503)


@router.get("/metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    sm = service.registry.active
    if sm is not None:
        service.metrics.serving(sm.version, sm.kind, sm.index.size)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
