"""Admin: trigger a retrain, follow its job, list model versions, activate one.

Every endpoint needs the admin bearer token (``app.api.auth``). A retrain is
queued and answered at once (202); the worker does the training.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Path, status
from redis.exceptions import RedisError

from app.api.auth import AdminDep
from app.api.deps import JobQueueDep, JobStoreDep, RedisSyncDep, RegistryDep, SettingsDep
from app.errors import NotFound
from app.jobs.channel import publish_model
from app.jobs.queue import reconcile
from app.jobs.submit import submit
from app.schemas import (
    Activated,
    JobRecord,
    ModelsView,
    ModelVersion,
    Problem,
    RetrainAccepted,
    RetrainRequest,
)
from app.serving.registry import ModelLoadError
from app.settings import Settings
from training.checkpoint import (
    CheckpointError,
    current_version,
    list_versions,
    read_manifest,
    set_current,
)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[AdminDep])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no bearer token"},
    403: {"model": Problem, "description": "wrong token, or admin disabled"},
    503: {"model": Problem, "description": "the job store (Redis) is unreachable"},
}
VersionPath = Path(min_length=1, max_length=200, pattern=r"^[\w-][\w.-]*$")
JobIdPath = Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")


async def _call(fn: Any, *args: Any) -> Any:
    """A blocking job-store call off the event loop (a Redis failure answers 503)."""
    return await asyncio.to_thread(fn, *args)


@router.post(
    "/retrain",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **_ERRORS,
        409: {"model": Problem, "description": "a retrain of this model kind is unfinished"},
    },
)
async def retrain(body: RetrainRequest, store: JobStoreDep, queue: JobQueueDep) -> RetrainAccepted:
    """Queue a retrain on the event log (plus ``base_dataset``); follow it at ``status_url``.

    One retrain of a model kind at a time: 409 while another is queued or running.
    """
    record = await _call(submit, store, queue, body)
    return RetrainAccepted(
        job_id=record.job_id, state=record.state, status_url=f"/admin/jobs/{record.job_id}"
    )


@router.get("/jobs", responses=_ERRORS)
async def jobs(store: JobStoreDep, queue: JobQueueDep) -> list[JobRecord]:
    """The 20 newest jobs, newest first."""
    return await _call(lambda: [reconcile(r, queue) for r in store.recent(20)])


@router.get("/jobs/{job_id}", responses={**_ERRORS, 404: {"model": Problem}})
async def job(store: JobStoreDep, queue: JobQueueDep, job_id: str = JobIdPath) -> JobRecord:
    """State, progress, metrics (new vs active model on the hold-out), version, error."""
    record = await _call(store.get, job_id)
    if record is None:
        raise NotFound(f"no job {job_id}")
    return await _call(reconcile, record, queue)


def _versions(settings: Settings) -> list[ModelVersion]:
    current = current_version(settings.model_dir)
    out = []
    for version in reversed(list_versions(settings.model_dir)):
        try:
            m = read_manifest(settings.model_dir, version)
        except CheckpointError:
            continue
        out.append(
            ModelVersion(
                version=version,
                kind=m.get("kind"),
                created=m.get("created"),
                metrics=m.get("metrics", {}),
                gate=m.get("gate"),
                data=m.get("data", {}),
                current=version == current,
            )
        )
    return out


@router.get("/models", responses=_ERRORS)
async def models(registry: RegistryDep, settings: SettingsDep) -> ModelsView:
    """Every checkpoint version with its metrics; which one is current and which is served here."""
    served = registry.active
    return ModelsView(
        current=current_version(settings.model_dir),
        # the directory, as ``current`` and the versions are named (a renamed checkpoint's
        # manifest still holds its first name)
        serving=served.directory if served else None,
        versions=await asyncio.to_thread(_versions, settings),
    )


@router.post(
    "/models/{version}/activate",
    responses={**_ERRORS, 404: {"model": Problem}, 409: {"model": Problem}},
)
async def activate(
    registry: RegistryDep,
    settings: SettingsDep,
    client: RedisSyncDep,
    version: str = VersionPath,
) -> Activated:
    """Serve ``version`` everywhere: loaded and checked here first, then named in CURRENT.

    A version that fails to load is refused (409) and nothing changes.
    """
    if version not in list_versions(settings.model_dir):
        raise NotFound(f"no checkpoint {version}")
    previous = current_version(settings.model_dir)
    try:
        await asyncio.to_thread(
            registry.activate, version, lambda: set_current(settings.model_dir, version)
        )
    except ModelLoadError as exc:
        raise ModelLoadError(f"cannot serve {version}: {exc}") from None
    if current_version(settings.model_dir) != version:  # it was served here already
        await asyncio.to_thread(set_current, settings.model_dir, version)
    announced = False
    if client is not None:
        # CURRENT is the truth: without the announcement the others follow at their next poll
        with contextlib.suppress(RedisError):
            await asyncio.to_thread(publish_model, client, settings.key_prefix, version)
            announced = True
    return Activated(version=version, previous=previous, announced=announced)
