"""The FastAPI application: ``create_app(settings)`` wires settings, store, model and routers.

Run it with ``nextitem-server serve`` (or ``uvicorn app.main:create_app --factory``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faiss
import redis
import torch
from fastapi import FastAPI

from app import errors
from app.api import (
    admin,
    admin_status,
    catalog,
    events,
    health,
    items,
    pages,
    recommendations,
    sessions,
)
from app.api.auth import admin_token
from app.api.fast_path import FastPath
from app.api.middleware import ServiceMiddleware
from app.api.spec import install as install_spec
from app.events.log import FileEventLog
from app.jobs.queue import JobQueue, LocalJobQueue, RqJobQueue
from app.jobs.store import job_store
from app.metrics import Metrics
from app.redis_client import memory_policy_warnings, sync_client
from app.serving.hot_swap import ModelWatcher
from app.serving.registry import ModelLoadError, ModelRegistry
from app.serving.roster import Roster
from app.serving.scorer import Scorer
from app.serving.service import Service
from app.sessions.store import (
    MemorySessionStore,
    RedisSessionStore,
    SessionStore,
)
from app.settings import Settings

log = logging.getLogger(__name__)


def make_store(settings: Settings) -> SessionStore:
    if settings.redis_url is None:
        return MemorySessionStore(
            FileEventLog(
                settings.resolved_event_log_path,
                fsync=settings.durability == "always",
                sync_every=1.0,  # everysec; ``always`` syncs every append instead
            ),
            ttl_seconds=settings.session_ttl_seconds,
            max_items=settings.max_session_items,
            event_id_ttl_seconds=settings.event_id_ttl_seconds,
            max_sessions=settings.max_sessions,
            max_event_ids=settings.max_event_ids,
        )
    return RedisSessionStore(
        settings.redis_url,
        prefix=settings.key_prefix,
        ttl_seconds=settings.session_ttl_seconds,
        max_items=settings.max_session_items,
        event_id_ttl_seconds=settings.event_id_ttl_seconds,
        timeout_seconds=settings.redis_timeout_seconds,
        durability=settings.durability,
        max_stream_events=settings.max_stream_events,
    )


def limit_threads(settings: Settings) -> None:
    """Apply the thread settings to the calling thread (OpenMP keeps them per thread)."""
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    if settings.search_threads:
        faiss.omp_set_num_threads(settings.search_threads)


def check_redis_memory(client: redis.Redis) -> None:
    """Log what is wrong with Redis's memory settings; at start, and never fatal (Redis may
    be down for now, or refuse INFO)."""
    try:
        warnings = memory_policy_warnings(client)
    except redis.RedisError as exc:
        log.info("could not read Redis's memory settings: %s", exc)
        return
    for warning in warnings:
        log.warning("%s", warning)


def make_job_queue(settings: Settings, app: FastAPI) -> JobQueue:
    """The retrain queue: rq on Redis, or a runner of child processes when embedded."""
    if app.state.redis_sync is not None:
        return RqJobQueue(settings, app.state.redis_sync)
    return LocalJobQueue(settings, app.state.jobs)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics()
    registry = ModelRegistry(settings, metrics)
    token, generated = admin_token(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limit_threads(settings)
        if settings.switch_interval_seconds:
            sys.setswitchinterval(settings.switch_interval_seconds)
        store = make_store(settings)
        scorer = Scorer(
            settings.search_batch_max,
            on_start=lambda: limit_threads(settings),
            threads=settings.search_workers,
            metrics=metrics,
            split_seconds=settings.search_split_seconds,
            max_pending=settings.search_queue_max,
        )
        try:
            await asyncio.to_thread(registry.load_current)
        except ModelLoadError as exc:
            log.error("starting without a model: %s", exc)
        app.state.service = Service(settings, store, registry, scorer, metrics)
        app.state.redis_sync = sync_client(settings) if settings.redis_url else None
        if app.state.redis_sync is not None:
            await asyncio.to_thread(check_redis_memory, app.state.redis_sync)
        app.state.jobs = job_store(settings, app.state.redis_sync)
        app.state.job_queue = make_job_queue(settings, app)
        watcher = ModelWatcher(registry, settings)
        watcher.start()
        app.state.watcher = watcher
        roster = Roster(
            registry, app.state.redis_sync, settings.key_prefix, settings.model_poll_seconds
        )
        roster.start()  # which model this process serves, for the dashboard
        app.state.roster = roster
        if generated:
            print(f"nextitem: admin token of this run (Bearer): {token}", file=sys.stderr)
        try:
            yield
        finally:
            await roster.stop()
            await watcher.stop()
            app.state.job_queue.close()
            scorer.close()
            await store.close()

    app = FastAPI(
        title="nextitem",
        summary="Session-based recommendations: events in, what-next out.",
        version="1",
        lifespan=lifespan,
        telemetry={kind: settings.opentelemetry for kind in ("tracing", "metrics", "logs")},
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.registry = registry
    app.state.admin_token = token
    errors.install(app, settings)
    for module in (events, recommendations, sessions, items, catalog, health, admin, admin_status):
        app.include_router(module.router)
    app.include_router(pages.router)  # the demo page and the dashboard (not in the API spec)
    install_spec(app, settings)  # the spec says the bounds of these settings
    if settings.fast_path:  # added first: inside ServiceMiddleware, which times it too
        app.add_middleware(FastPath)
    app.add_middleware(ServiceMiddleware, metrics=metrics, max_body_bytes=settings.max_body_bytes)
    return app
