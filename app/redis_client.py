"""The blocking Redis client of the service's side jobs (job records, the queue, announcements).

Request handlers use the session store's own asynchronous client; this one
serves the admin endpoints (from a thread) and the worker.
"""

from __future__ import annotations

import redis

from app.settings import Settings


def sync_client(settings: Settings) -> redis.Redis:
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
