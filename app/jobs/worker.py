"""The worker's side of a retrain job: snapshot, run the trainer, record, activate, announce.

The worker takes the event-log snapshot (it owns the log), writes it and the
job's config to files, and runs the trainer's ``nextitem retrain`` command as
a child process (``python -m training.cli retrain``): the service never
imports training code, and a training loop never runs in a process of the
service. The child's progress lines go to the job record as they come; its
outcome file says which version it wrote and whether it passed the quality
gate. Only then does the worker name the version in ``CURRENT`` and announce
it, so a failed or rejected training never changes what is served.

The record moves queued -> running -> succeeded (activated), rejected (the
gate kept the active model) or failed (with the error).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from app.events.archive import EventArchive
from app.events.snapshot import EventSnapshot, file_snapshot, redis_snapshot
from app.jobs.channel import publish_model
from app.jobs.store import job_store
from app.redis_client import sync_client
from app.schemas import RetrainRequest
from app.settings import Settings
from training.checkpoint import current_version, set_current

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


class TrainerFailed(RuntimeError):
    """The trainer child ended without an outcome, or with an error in it."""


def trainer_config(request: RetrainRequest, settings: Settings, note: dict[str, Any]) -> dict:
    """The ``--config`` JSON of ``nextitem retrain`` for one job: the request over the settings."""
    return {
        "kind": request.model,
        "params": request.params or {},
        "base_dataset": request.base_dataset,
        "since": request.since.timestamp() if request.since else None,
        "gate_ratio": settings.gate_ratio if request.gate_ratio is None else request.gate_ratio,
        "holdout_fraction": request.holdout_fraction or settings.holdout_fraction,
        "min_item_support": request.min_item_support,
        "data": note,
    }


def run_trainer(
    snapshot: EventSnapshot,
    config: dict[str, Any],
    model_dir: Path,
    active: str | None,
    progress: Progress,
) -> dict[str, Any]:
    """Run ``nextitem retrain`` on ``snapshot`` in a child process; returns its outcome record."""
    with tempfile.TemporaryDirectory(prefix="nextitem-job-") as tmp:
        work = Path(tmp)
        snapshot.events.to_parquet(work / "events.parquet", index=False)
        (work / "config.json").write_text(json.dumps(config))
        cmd = [
            sys.executable, "-m", "training.cli", "retrain",
            "--events", str(work / "events.parquet"),
            "--config", str(work / "config.json"),
            "--model-dir", str(model_dir),
            "--outcome", str(work / "outcome.json"),
        ]  # fmt: skip
        if active is not None:
            cmd += ["--active", active]
        with open(work / "stderr.txt", "w+") as err:
            child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
            try:
                assert child.stdout is not None
                for line in child.stdout:
                    _follow(line, progress)
                code = child.wait()
            finally:
                # a timeout or a stop of this worker must not leave the trainer running
                if child.poll() is None:
                    child.kill()
                    child.wait()
            err.seek(0)
            tail = err.read()[-2000:].strip()
        outcome_path = work / "outcome.json"
        outcome = json.loads(outcome_path.read_text()) if outcome_path.is_file() else None
    if outcome is None or "error" in outcome or code != 0:
        why = (outcome or {}).get("error") or (tail.splitlines()[-1] if tail else "no output")
        raise TrainerFailed(f"the trainer exited with code {code}: {why}")
    return outcome


def _follow(line: str, progress: Progress) -> None:
    """Pass one progress line of the trainer on; anything else it prints goes to the log."""
    try:
        point = json.loads(line)
        progress(float(point["progress"]), str(point["stage"]))
    except (ValueError, KeyError, TypeError):
        if line.strip():
            log.info("trainer: %s", line.rstrip())


def take_snapshot(settings: Settings, client: redis.Redis | None) -> EventSnapshot:
    """Every logged event up to now; with Redis, the stream part moves to the archive."""
    if client is None:
        return file_snapshot(settings.resolved_event_log_path)
    return redis_snapshot(
        client, settings.key_prefix, EventArchive(settings.model_dir / "event-archive")
    )


def clamp_future(snapshot: EventSnapshot, now: float, skew: float) -> EventSnapshot:
    """Events dated more than ``skew`` after ``now`` read as ``now`` (as ingestion logs them).

    Why again here: the hold-out is the newest visits, and a log may hold future
    dates written before ingestion clamped them; they must not choose it either.
    """
    ts = snapshot.events["ts"]
    ahead = ts > now + skew
    if not ahead.any():
        return snapshot
    log.warning("snapshot: %d event(s) dated ahead of the clock read as now", int(ahead.sum()))
    events = snapshot.events.assign(ts=ts.where(~ahead, now))
    return EventSnapshot(events, snapshot.position)


def run_job(job_id: str) -> str:
    """Run retrain job ``job_id`` to its end (the rq job function); returns its final state."""
    settings = Settings()
    client = sync_client(settings) if settings.redis_url else None
    store = job_store(settings, client)
    record = store.get(job_id)
    if record is None:
        raise KeyError(f"no retrain job {job_id}")
    store.update(job_id, state="running", started=time.time(), stage="snapshot", progress=0.01)

    def progress(fraction: float, stage: str) -> None:
        store.update(job_id, progress=round(fraction, 3), stage=stage)

    try:
        snap = take_snapshot(settings, client)
        snap = clamp_future(snap, time.time(), settings.max_clock_skew_seconds)
        store.update(job_id, consumed_up_to=snap.position, stage="snapshot", progress=0.05)
        note = {"job_id": job_id, "consumed_up_to": snap.position}
        config = trainer_config(record.request, settings, note)
        active = current_version(settings.model_dir)
        outcome = run_trainer(snap, config, settings.model_dir, active, progress)
        passed, version = bool(outcome["passed"]), str(outcome["version"])
        if passed:
            set_current(settings.model_dir, version)
            if client is not None:
                publish_model(client, settings.key_prefix, version)
        state = "succeeded" if passed else "rejected"
        store.update(
            job_id,
            state=state,
            finished=time.time(),
            progress=1.0,
            stage="activated" if passed else "rejected by the quality gate",
            metrics=outcome["metrics"],
            version=version,
            activated=passed,
        )
        return state
    except Exception as exc:
        store.update(
            job_id, state="failed", finished=time.time(), error=f"{type(exc).__name__}: {exc}"
        )
        raise
