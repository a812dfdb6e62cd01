"""Job records: the one place where an admin sees what a retrain is doing.

The API creates a record, the worker updates it (state, progress, metrics, the
version it wrote, its error): in Redis (``<prefix>:job:<id>``, plus the sorted
set ``<prefix>:jobs`` of recent ids) when the service runs on Redis, in JSON
files next to the checkpoints when it runs embedded.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import redis

from app.redis_client import sync_client
from app.schemas import JobRecord, RetrainRequest
from app.settings import Settings


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


def job_store(settings: Settings, client: redis.Redis | None = None) -> JobStore:
    if settings.redis_url is None:
        return FileJobStore(settings.model_dir / "jobs")
    return RedisJobStore(client or sync_client(settings), settings.key_prefix)
