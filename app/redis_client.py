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


def memory_policy_warnings(client: redis.Redis) -> list[str]:
    """What is wrong with Redis's memory settings for this service, in words (none: fine).

    Redis must refuse writes at a memory limit (``maxmemory`` with ``noeviction``):
    the service then answers 503 and the client retries. Any eviction policy
    drops logged events, event ids and visits without a word, and without a
    limit Redis grows until its host kills it.
    """
    memory = client.info("memory")
    policy, limit = memory.get("maxmemory_policy"), int(memory.get("maxmemory", 0))
    found = []
    if policy != "noeviction":
        found.append(
            f"Redis's maxmemory-policy is {policy}: at its memory limit it drops keys, logged "
            "events and event ids among them; set maxmemory-policy noeviction"
        )
    if limit == 0:
        found.append(
            "Redis has no maxmemory: it grows until its host runs out of memory; set maxmemory "
            "(with maxmemory-policy noeviction, writes past it are answered 503)"
        )
    return found
