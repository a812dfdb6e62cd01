"""The queue that hands a retrain job to whoever trains, and how a lost job is noticed.

With Redis: an rq queue that ``nextitem-server worker`` processes consume.
Embedded: a thread of the API process that runs each job in a child process
(``python -m app.cli worker --run-job ID``). Either way the job function is
named, not imported, and the training itself runs in a further child process
(the trainer's ``nextitem retrain`` command, see ``app.jobs.worker``): a
training loop never runs in the process that answers requests.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Protocol

import redis
from pydantic import SecretStr

from app.jobs.store import JobStore
from app.redis_client import sync_client
from app.schemas import FINISHED, JobRecord
from app.settings import Settings

log = logging.getLogger(__name__)

#: the function a worker runs for a job id (named, so that the API never imports it)
JOB_FUNCTION = "app.jobs.worker.run_job"


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
        """Queue the job once: a job rq already holds (a retry, a resend) is not queued again.

        rq writes the job and pushes its id in one transaction, so a job it holds is queued.
        """
        from rq.job import Job

        if Job.exists(job_id, connection=self.client):
            return
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
        self._queued: set[str] = set()  # every job id ever queued here: each runs once
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
                self.enqueue(record.job_id)

    def enqueue(self, job_id: str) -> None:
        if job_id not in self._queued:
            self._queued.add(job_id)
            self._queue.put(job_id)

    def failure(self, job_id: str) -> str | None:
        return self._failures.get(job_id)

    def _run(self) -> None:
        while (job_id := self._queue.get()) is not None:
            cmd = [sys.executable, "-m", "app.cli", "worker", "--run-job", job_id]
            with tempfile.TemporaryFile("w+") as out:
                # its own process group: a timeout ends the worker and the trainer it started
                self._child = subprocess.Popen(
                    cmd, env=self.env, stdout=out, stderr=out, start_new_session=True
                )
                try:
                    code = self._child.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(self._child.pid, signal.SIGKILL)
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
            os.killpg(child.pid, signal.SIGTERM)
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
