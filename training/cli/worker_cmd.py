"""``nextitem worker``: runs retrain jobs from the Redis queue (or one job, embedded).

Here the service's side (job records, the event log, the model channel, all in
``app``) meets the training side (``training.retrain``): the API only names
``run_job``; this process imports both.
"""

from __future__ import annotations

import logging
import time

import typer
from rich.console import Console

from training.checkpoint import current_version, set_current
from training.cli import app

console = Console()
log = logging.getLogger(__name__)


def run_job(job_id: str) -> str:
    """Run retrain job ``job_id`` to its end; returns its final state.

    The record moves queued -> running -> succeeded (activated), rejected (the
    quality gate kept the active model) or failed (with the error).
    """
    from app.event_archive import EventArchive
    from app.event_snapshot import file_snapshot, redis_snapshot
    from app.jobs import job_store, publish_model, sync_client
    from app.settings import Settings
    from training.retrain import RetrainConfig, retrain

    settings = Settings()
    client = sync_client(settings) if settings.redis_url else None
    store = job_store(settings, client)
    record = store.get(job_id)
    if record is None:
        raise KeyError(f"no retrain job {job_id}")
    req = record.request
    store.update(job_id, state="running", started=time.time(), stage="snapshot", progress=0.01)

    def progress(fraction: float, stage: str) -> None:
        store.update(job_id, progress=round(fraction, 3), stage=stage)

    try:
        if client is not None:
            archive = EventArchive(settings.model_dir / "event-archive")
            snap = redis_snapshot(client, settings.key_prefix, archive)
        else:
            snap = file_snapshot(settings.resolved_event_log_path)
        store.update(job_id, consumed_up_to=snap.position, stage="snapshot", progress=0.05)
        cfg = RetrainConfig(
            kind=req.model,
            params=req.params or {},
            base_dataset=req.base_dataset,
            since=req.since.timestamp() if req.since else None,
            gate_ratio=settings.gate_ratio if req.gate_ratio is None else req.gate_ratio,
            holdout_fraction=req.holdout_fraction or settings.holdout_fraction,
            min_item_support=req.min_item_support,
        )
        active = current_version(settings.model_dir)
        outcome = retrain(
            snap.events,
            settings.model_dir,
            cfg,
            active_version=active,
            data_note={"job_id": job_id, "consumed_up_to": snap.position},
            progress=progress,
        )
        if outcome.passed:
            set_current(settings.model_dir, outcome.version)
            if client is not None:
                publish_model(client, settings.key_prefix, outcome.version)
        state = "succeeded" if outcome.passed else "rejected"
        store.update(
            job_id,
            state=state,
            finished=time.time(),
            progress=1.0,
            stage="activated" if outcome.passed else "rejected by the quality gate",
            metrics=outcome.metrics,
            version=outcome.version,
            activated=outcome.passed,
        )
        return state
    except Exception as exc:
        store.update(
            job_id, state="failed", finished=time.time(), error=f"{type(exc).__name__}: {exc}"
        )
        raise


@app.command()
def worker(
    burst: bool = typer.Option(False, help="stop when the queue is empty"),
    run_job_id: str | None = typer.Option(
        None, "--run-job", help="run this one job and exit (how the embedded service trains)"
    ),
) -> None:
    """Consume retrain jobs from the Redis queue (NEXTITEM_REDIS_URL, NEXTITEM_KEY_PREFIX)."""
    from app.settings import Settings

    if run_job_id is not None:
        state = run_job(run_job_id)
        console.print(f"job {run_job_id}: {state}")
        return
    settings = Settings()
    if settings.redis_url is None:
        console.print(
            "[bold red]no queue:[/] set NEXTITEM_REDIS_URL (the embedded service runs its "
            "jobs itself)"
        )
        raise typer.Exit(2)
    import redis
    from rq import Worker

    from app.jobs import queue_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # no socket timeout: the worker blocks on the queue for minutes at a time
    connection = redis.Redis.from_url(settings.redis_url)
    rq_worker = Worker([queue_name(settings.key_prefix)], connection=connection)
    console.print(
        f"worker on {settings.redis_url}, queue {queue_name(settings.key_prefix)}, "
        f"models in {settings.model_dir}"
    )
    rq_worker.work(burst=burst, with_scheduler=False)
