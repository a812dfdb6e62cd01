"""Submitting a retrain: one record, queued once, one job of a model kind at a time.

Why a module of its own: the blocking Redis client of the job store and the
queue does not retry by itself (``app.redis_client``), since a call that timed
out may still run once Redis wakes up. Submitting retries instead, with the
same job id, and each step is idempotent for that id: creating the record
(``JobStore.create``) and queueing it (``JobQueue.enqueue``). A submission
that fails every try answers 503 naming its job id, which may or may not
exist; a resend of the request is then refused (409) while that job stands,
and queues it if the lost submission created it without queueing it. So
neither a retry nor a resend trains the same thing twice.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.jobs.queue import JobQueue, reconcile
from app.jobs.store import JobStore, RetrainRunning, new_job
from app.schemas import FINISHED, JobRecord, RetrainRequest

log = logging.getLogger(__name__)

TRIES = 2


class SubmitUnknown(RedisError):
    """Every try timed out: the job may or may not have been created and queued."""


def submit(store: JobStore, queue: JobQueue, request: RetrainRequest) -> JobRecord:
    """Create and queue a job for ``request``; ``RetrainRunning`` while its kind is busy."""
    record = new_job(request)
    error: RedisError | None = None
    for _ in range(TRIES + 1):  # + 1: once more after freeing a kind held by a lost job
        try:
            store.create(record)
            queue.enqueue(record.job_id)
            return record
        except RetrainRunning as busy:
            if not _lost(store, queue, busy.job_id):
                raise
        except (RedisConnectionError, RedisTimeoutError) as exc:
            error = exc
    raise SubmitUnknown(
        f"{error}; job {record.job_id} may or may not have been created: GET "
        f"/admin/jobs/{record.job_id} tells (a resend is refused while it is unfinished)"
    ) from error


def _lost(store: JobStore, queue: JobQueue, job_id: str) -> bool:
    """Whether the job holding a kind is gone (then its record says so, freeing the kind).

    A job the queue gave up on (killed, timed out) is marked failed. A job still
    queued is queued again, in case the request that created it timed out before
    it could (``enqueue`` queues a job once).
    """
    holder = store.get(job_id)
    if holder is None:  # expired between the check and now: its kind is free
        return True
    checked = reconcile(holder, queue)
    if checked.state in FINISHED and holder.state not in FINISHED:
        log.warning("retrain job %s was lost: %s", job_id, checked.error)
        store.update(job_id, state=checked.state, finished=time.time(), error=checked.error)
        return True
    if holder.state == "queued":
        queue.enqueue(job_id)
    return False
