"""Job records: the one place where an admin sees what a retrain is doing.

The API creates a record, the worker updates it (state, progress, metrics, the
version it wrote, its error): in Redis (``<prefix>:job:<id>``, plus the sorted
set ``<prefix>:jobs`` of recent ids) when the service runs on Redis, in JSON
files next to the checkpoints when it runs embedded. Either keeps the newest
``max_finished`` finished jobs (by creation) and every unfinished one: when a
job finishes, older finished records go, so neither grows without end.

One retrain of a model kind at a time: ``create`` refuses a job while another
of the same kind is unfinished (``RetrainRunning``, a 409), so two admins, or
one admin resending a request that timed out, never train the same kind twice
side by side. In Redis the rule is the key ``<prefix>:retrain-lock:<kind>``,
naming the job that holds it; creating is one script, so it is atomic across
API processes, and the same job id may create again (a retry after a timeout
writes nothing twice). The lock goes when the job's record reaches a final
state, when the record is gone (expired), or after ``lock_seconds``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import redis

from app.redis_client import sync_client
from app.schemas import FINISHED, STORED, JobRecord, RetrainRequest
from app.settings import Settings


class RetrainRunning(Exception):
    """Another retrain of the same model kind is queued or running: it must end first."""

    def __init__(self, kind: str, job_id: str) -> None:
        super().__init__(
            f"a {kind} retrain is already queued or running (job {job_id}); one retrain of a "
            f"model kind at a time: follow it at /admin/jobs/{job_id}"
        )
        self.kind = kind
        self.job_id = job_id


class JobStore(Protocol):
    def create(self, record: JobRecord) -> None:
        """Store a new record; ``RetrainRunning`` while a job of its kind is unfinished."""
        ...

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


# Create a job unless another job of its kind holds the kind's lock and still has a record.
# The same job id may run it again (a retry): the lock is its own, the record is not
# rewritten (SET NX), the index entry is the same. KEYS: record, index, lock. ARGV: job id,
# record JSON, created, keep seconds, lock seconds, the prefix of record keys.
_CREATE = """
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[6] .. holder) == 1 then
  return holder
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[5])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[4], 'NX')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return false
"""

# Release a kind's lock if this job holds it. KEYS: lock. ARGV: job id.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisJobStore(_RewriteOnUpdate):
    """Records as JSON strings under ``<prefix>:job:<id>``, kept for ``keep_seconds``.

    A kind's lock lasts at most ``lock_seconds`` (a job stopped without a final
    state, its record kept, frees its kind after that).
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        keep_seconds: int = 30 * 86_400,
        lock_seconds: int = 86_400,
        max_finished: int = 500,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.keep = keep_seconds
        self.lock_seconds = lock_seconds
        self.max_finished = max_finished
        self.index = f"{prefix}:jobs"
        self._create = client.register_script(_CREATE)
        self._release = client.register_script(_RELEASE)

    def _key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def lock_key(self, kind: str) -> str:
        return f"{self.prefix}:retrain-lock:{kind}"

    def create(self, record: JobRecord) -> None:
        kind = record.request.model
        holder = self._create(
            keys=[self._key(record.job_id), self.index, self.lock_key(kind)],
            args=[
                record.job_id,
                record.model_dump_json(),
                record.created,
                self.keep,
                self.lock_seconds,
                self._key(""),
            ],
        )
        if holder is not None:
            raise RetrainRunning(kind, holder.decode())

    def get(self, job_id: str) -> JobRecord | None:
        raw = self.client.get(self._key(job_id))
        return None if raw is None else JobRecord.model_validate_json(raw, context=STORED)

    def _write(self, record: JobRecord) -> None:
        self.client.set(self._key(record.job_id), record.model_dump_json(), ex=self.keep)
        if record.state in FINISHED:
            self._release(keys=[self.lock_key(record.request.model)], args=[record.job_id])
            self._trim()

    def _trim(self) -> None:
        """Drop all but the newest ``max_finished`` finished jobs from the index, and their
        records; ids whose record expired go too. Unfinished jobs stay, however old.

        Reads every indexed record, so it runs when a job finishes, not per request.
        """
        ids = [i.decode() for i in self.client.zrevrange(self.index, 0, -1)]
        if not ids:
            return
        raws = self.client.mget([self._key(i) for i in ids])
        expired = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        finished = [
            i
            for i, raw in zip(ids, raws, strict=True)
            if raw is not None and json.loads(raw)["state"] in FINISHED
        ]
        drop = expired + finished[self.max_finished :]
        if drop:
            self.client.zrem(self.index, *drop)
            self.client.delete(*[self._key(i) for i in drop])

    def recent(self, n: int = 20) -> list[JobRecord]:
        ids = self.client.zrevrange(self.index, 0, n - 1)
        records = [self.get(i.decode()) for i in ids]
        return [r for r in records if r is not None]


class FileJobStore(_RewriteOnUpdate):
    """Records as ``<directory>/<id>.json``, each replaced atomically.

    Embedded, one process creates jobs: a lock of that process makes the check of
    unfinished jobs of a kind and the creation one step.
    """

    def __init__(self, directory: Path, max_finished: int = 500) -> None:
        self.directory = directory
        self.max_finished = max_finished
        directory.mkdir(parents=True, exist_ok=True)
        self._creating = threading.Lock()

    def _path(self, job_id: str) -> Path:
        if not job_id.isalnum():
            raise KeyError(f"no job {job_id}")
        return self.directory / f"{job_id}.json"

    def create(self, record: JobRecord) -> None:
        kind = record.request.model
        with self._creating:
            for other in self.recent(1000):
                if (
                    other.job_id != record.job_id
                    and other.request.model == kind
                    and other.state not in FINISHED
                ):
                    raise RetrainRunning(kind, other.job_id)
            self._write(record)

    def _write(self, record: JobRecord) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".job.", dir=self.directory)
        with os.fdopen(fd, "w") as f:
            f.write(record.model_dump_json())
        os.replace(tmp, self._path(record.job_id))
        if record.state in FINISHED:
            self._trim()

    def _trim(self) -> None:
        """Remove all but the newest ``max_finished`` finished records; unfinished ones stay."""
        finished = [r for r in self._records() if r.state in FINISHED]
        for record in finished[self.max_finished :]:
            self._path(record.job_id).unlink(missing_ok=True)

    def get(self, job_id: str) -> JobRecord | None:
        try:
            return JobRecord.model_validate_json(self._path(job_id).read_text(), context=STORED)
        except (KeyError, FileNotFoundError):
            return None

    def recent(self, n: int = 20) -> list[JobRecord]:
        return self._records()[:n]

    def _records(self) -> list[JobRecord]:
        """Every record, newest first (a record removed meanwhile, by another process's
        trim, is left out)."""
        records = []
        for path in self.directory.glob("*.json"):
            try:
                records.append(JobRecord.model_validate_json(path.read_text(), context=STORED))
            except FileNotFoundError:
                continue
        return sorted(records, key=lambda r: r.created, reverse=True)


def job_store(settings: Settings, client: redis.Redis | None = None) -> JobStore:
    if settings.redis_url is None:
        return FileJobStore(settings.model_dir / "jobs", max_finished=settings.max_finished_jobs)
    # a kind's lock outlasts a job that waited in the queue and then ran to its timeout
    lock = 2 * settings.job_timeout_seconds + 3600
    return RedisJobStore(
        client or sync_client(settings),
        settings.key_prefix,
        lock_seconds=lock,
        max_finished=settings.max_finished_jobs,
    )
