"""Retrain jobs: their records, the queue that hands them to a worker, and the model channel.

A job record is the one place where an admin sees what a retrain is doing
(state, progress, metrics, the version it wrote, its error). The API creates
it, the worker process updates it: in Redis (``<prefix>:job:<id>``, plus the
sorted set ``<prefix>:jobs`` of recent ids) when the service runs on Redis, in
JSON files next to the checkpoints when it runs embedded.

The queue hands a job id to whoever trains: with Redis, an rq queue that
``nextitem worker`` processes consume; embedded, a thread of the API process
that runs each job in a child process (``python -m training.cli worker
--run-job ID``), so a training loop never runs in the process that answers
requests. Either way the job function is named, not imported: the API stays
free of training code.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.settings import Settings

log = logging.getLogger(__name__)

#: the function a worker runs for a job id (named, so that the API never imports training code)
JOB_FUNCTION = "training.cli.worker_cmd.run_job"

JobState = Literal["queued", "running", "succeeded", "rejected", "failed"]
FINISHED: tuple[JobState, ...] = ("succeeded", "rejected", "failed")


class RetrainRequest(BaseModel):
    """What to train: ``POST /admin/retrain``'s body, kept in the job record."""

    model_config = ConfigDict(extra="forbid")

    model: Literal["gru4rec", "comirec-sa", "comirec-dr", "mind"] = Field(
        "gru4rec", description="model kind to train"
    )
    params: dict[str, Any] | None = Field(
        None, description="hyperparameters over the defaults, e.g. {'n_epochs': 5}"
    )
    base_dataset: str | None = Field(
        None,
        max_length=200,
        description="a registered dataset trained on together with the event log (same item ids)",
    )
    since: datetime | None = Field(None, description="use only logged events from this time on")
    gate_ratio: float | None = Field(
        None, ge=0, description="override of the quality gate (Recall@20 >= ratio x active)"
    )
    holdout_fraction: float | None = Field(
        None, gt=0, lt=1, description="override: newest share of sessions held out for the gate"
    )
    min_item_support: int = Field(
        5, ge=1, description="items clicked fewer times are dropped before training"
    )


class JobRecord(BaseModel):
    job_id: str
    state: JobState
    request: RetrainRequest
    created: float
    started: float | None = None
    finished: float | None = None
    progress: float = Field(0.0, description="0 to 1")
    stage: str = Field("queued", description="what the job is doing now")
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="hold-out figures of the new and the active model"
    )
    version: str | None = Field(None, description="the checkpoint the job wrote")
    activated: bool = False
    consumed_up_to: str | None = Field(
        None, description="the last event-log position the job trained on"
    )
    error: str | None = None


class JobStore(Protocol):
    def create(self, record: JobRecord) -> None: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def update(self, job_id: str, **changes: Any) -> JobRecord: ...

    def recent(self, n: int = 20) -> list[JobRecord]: ...


def new_job(request: RetrainRequest) -> JobRecord:
    return JobRecord(job_id=uuid.uuid4().hex, state="queued", request=request, created=time.time())


class _RewriteOnUpdate:
    """``update`` as read, change, write the whole record: one writer at a time (the API
    creates a record, then only the job's worker changes it), so no lock is needed."""

    def get(self, job_id: str) -> JobRecord | None:
        raise NotImplementedError

    def _write(self, record: JobRecord) -> None:
        raise NotImplementedError

    def update(self, job_id: str, **changes: Any) -> JobRecord:
        record = self.get(job_id)
        if record is None:
            raise KeyError(f"no job {job_id}")
        record = record.model_copy(update=changes)
        self._write(record)
        return record


class RedisJobStore(_RewriteOnUpdate):
    """Records as JSON strings under ``<prefix>:job:<id>``, kept for ``keep_seconds``."""

    def __init__(self, client: redis.Redis, prefix: str, keep_seconds: int = 30 * 86_400) -> None:
        self.client = client
        self.prefix = prefix
        self.keep = keep_seconds
        self.index = f"{prefix}:jobs"

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def create(self, record: JobRecord) -> None:
        with self.client.pipeline() as pipe:
            pipe.set(self._key(record.job_id), record.model_dump_json(), ex=self.keep)
            pipe.zadd(self.index, {record.job_id: record.created})
            pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.client.get(self._key(job_id))
        return None if raw is None else JobRecord.model_validate_json(raw)

    def _write(self, record: JobRecord) -> None:
        self.client.set(self._key(record.job_id), record.model_dump_json(), ex=self.keep)

    def recent(self, n: int = 20) -> list[JobRecord]:
        ids = self.client.zrevrange(self.index, 0, n - 1)
        records = [self.get(i.decode()) for i in ids]
        return [r for r in records if r is not None]


class FileJobStore(_RewriteOnUpdate):
    """Records as ``<directory>/<id>.json``, each replaced atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str) -> Path:
        if not job_id.isalnum():
            raise KeyError(f"no job {job_id}")
        return self.directory / f"{job_id}.json"

    def create(self, record: JobRecord) -> None:
        self._write(record)

    def _write(self, record: JobRecord) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".job.", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            f.write(record.model_dump_json())
        os.replace(tmp, self._path(record.job_id))

    def get(self, job_id: str) -> JobRecord | None:
        try:
            return JobRecord.model_validate_json(self._path(job_id).read_text())
        except (KeyError, FileNotFoundError):
            return None

    def recent(self, n: int = 20) -> list[JobRecord]:
        records = [
            JobRecord.model_validate_json(p.read_text()) for p in self.directory.glob("*.json")
        ]
        return sorted(records, key=lambda r: r.created, reverse=True)[:n]


def sync_client(settings: Settings) -> redis.Redis:
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)


def job_store(settings: Settings, client: redis.Redis | None = None) -> JobStore:
    if settings.redis_url is None:
        return FileJobStore(settings.model_dir / "jobs")
    return RedisJobStore(client or sync_client(settings), settings.key_prefix)


def model_channel(prefix: str) -> str:
    """Pub/sub channel on which a new active version is announced to every API process."""
    return f"{prefix}:model"


def publish_model(client: redis.Redis, prefix: str, version: str) -> None:
    client.publish(model_channel(prefix), version)


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``NEXTITEM_*`` variables that recreate it in a child process."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"NEXTITEM_{name.upper()}"] = str(value)
    return env


class JobQueue(Protocol):
    def enqueue(self, job_id: str) -> None: ...

    def failure(self, job_id: str) -> str | None:
        """Why the queue gave up on a job it was running (killed, timed out), else None."""
        ...

    def close(self) -> None: ...


class RqJobQueue:
    """The rq queue ``<prefix>:retrain`` on the service's Redis."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        from rq import Queue

        self.client = client or sync_client(settings)
        self.timeout = settings.job_timeout_seconds
        self.queue = Queue(queue_name(settings.key_prefix), connection=self.client)

    def enqueue(self, job_id: str) -> None:
        self.queue.enqueue(
            JOB_FUNCTION,
            job_id,
            job_id=job_id,
            job_timeout=self.timeout,
            result_ttl=7 * 86_400,
            failure_ttl=30 * 86_400,
        )

    def failure(self, job_id: str) -> str | None:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        try:
            job = Job.fetch(job_id, connection=self.client)
        except NoSuchJobError:
            return None
        status = job.get_status(refresh=False)
        if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
            info = (job.latest_result().exc_string if job.latest_result() else None) or ""
            last = info.strip().splitlines()[-1] if info.strip() else ""
            return f"the worker reported the job {status.value}" + (f": {last}" if last else "")
        return None

    def close(self) -> None:
        self.client.close()


def queue_name(prefix: str) -> str:
    return f"{prefix}:retrain"


class LocalJobQueue:
    """The embedded queue: one thread runs jobs in turn, each in a child process.

    The child is the same command a worker would run for one job, with this
    service's settings in its environment. A job the child left unfinished
    (killed, crashed) is marked failed here, with the end of its output.
    """

    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.env = {**os.environ, **settings_env(settings)}
        self.store = store
        self.timeout = settings.job_timeout_seconds
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._failures: dict[str, str] = {}
        self._thread = threading.Thread(target=self._run, name="nextitem-jobs", daemon=True)
        self._child: subprocess.Popen | None = None
        self._recover()
        self._thread.start()

    def _recover(self) -> None:
        """Jobs a previous run of the service left behind: finish the story of each."""
        for record in reversed(self.store.recent(1000)):
            if record.state == "running":
                self.store.update(
                    record.job_id,
                    state="failed",
                    finished=time.time(),
                    error="interrupted: the service stopped while the job ran",
                )
            elif record.state == "queued":
                self._queue.put(record.job_id)

    def enqueue(self, job_id: str) -> None:
        self._queue.put(job_id)

    def failure(self, job_id: str) -> str | None:
        return self._failures.get(job_id)

    def _run(self) -> None:
        while (job_id := self._queue.get()) is not None:
            cmd = [sys.executable, "-m", "training.cli", "worker", "--run-job", job_id]
            with tempfile.TemporaryFile("w+") as out:
                self._child = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=out)
                try:
                    code = self._child.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    self._child.kill()
                    code = self._child.wait()
                out.seek(0)
                tail = out.read()[-2000:]
            self._child = None
            record = self.store.get(job_id)
            if code != 0 and record is not None and record.state not in FINISHED:
                reason = f"the job process exited with code {code}"
                lines = tail.strip().splitlines()
                self._failures[job_id] = reason + (f": {lines[-1]}" if lines else "")
                self.store.update(
                    job_id, state="failed", finished=time.time(), error=self._failures[job_id]
                )
                log.error("retrain job %s failed:\n%s", job_id, tail)

    def close(self) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
        self._queue.put(None)
        self._thread.join(timeout=10)


def reconcile(record: JobRecord, queue: JobQueue) -> JobRecord:
    """The record, marked failed if the queue knows the job died without saying so itself."""
    if record.state in FINISHED:
        return record
    reason = queue.failure(record.job_id)
    if reason is None:
        return record
    return record.model_copy(update={"state": "failed", "error": reason})
