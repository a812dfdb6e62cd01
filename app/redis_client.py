"""The blocking Redis client of the service's side jobs (job records, the queue, announcements).

Request handlers use the session store's own asynchronous client; this one
serves the admin endpoints (from a thread) and the worker.

It never retries a call by itself, whatever redis-py's default of the day: a
call that timed out may still run once Redis wakes up, and a blind retry of a
job's creation or queueing could then create or queue it twice. The callers
that retry do it with steps that are idempotent for the same job
(``app.jobs.submit``).
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.settings import Settings


def sync_client(settings: Settings) -> redis.Redis:
    assert settings.redis_url is not None
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=5,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )
