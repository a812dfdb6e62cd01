"""A slow Redis (an AOF fsync stall, a large XTRIM) must not double an event, nor make the
service claim that nothing was recorded when it may have been.

The store retries a call that timed out; the first try still runs once Redis
wakes up. ``DEBUG SLEEP`` stalls a Redis of the test's own (the shared server
is never stalled, stopped or reconfigured).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.events.log import LoggedEvent
from app.sessions.store import RedisSessionStore
from app.settings import Settings
from tests.app.support import LiveServer, OwnRedis, item_id, write_tiny_checkpoint

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")

STREAM = "nextitem:events"


@pytest.fixture
def slow_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder, "--enable-debug-command", "yes").start()
    try:
        yield server
    finally:
        server.kill()


def ev(item: str, event_id: str | None = None) -> LoggedEvent:
    return LoggedEvent("s", item, 1.5, "view", event_id)


def test_a_retried_ingest_is_logged_once(slow_redis: OwnRedis) -> None:
    """The first try times out (0.5 s) in a 0.8 s stall, the retry answers: one entry, logged."""
    store = RedisSessionStore(slow_redis.url, "nextitem", 60, 50, 60, timeout_seconds=0.5)

    async def run() -> list[bool]:
        try:
            assert await store.ingest([ev("warm-up")]) == [True]
            stall = slow_redis.stall(0.8)
            acks = await store.ingest([ev("1")])
            stall.join()
            return acks
        finally:
            await store.close()

    assert asyncio.run(run()) == [True]
    assert settled_xlen(slow_redis, 2) == 2  # the warm-up and the event, once
    assert slow_redis.client.hget("nextitem:sess:s", "n") == b"2"


def test_a_write_that_may_have_happened_is_not_called_unrecorded(
    slow_redis: OwnRedis, tmp_path: Path
) -> None:
    """Both tries time out in a 1.5 s stall: 503 saying the outcome is unknown, and the event,
    which Redis runs after the stall, is in the log once. A resend with an event_id is
    recorded once. A Redis that refuses connections: "nothing was recorded"."""
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, redis_url=slow_redis.url, redis_timeout_seconds=0.5)
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=10) as http:
        click = {"session_id": "s", "item_id": item_id(4)}
        logged = 0
        for path, body in (("/v1/events", click), ("/v1/events/batch", {"events": [click]})):
            # a click that connects the store again (the failed tries closed its connections):
            # the next first try goes out on that connection at once, and so runs after the stall
            assert http.post("/v1/events", json=click).status_code == 202
            stall = slow_redis.stall(1.5)
            answer = http.post(path, json=body)
            stall.join()
            assert answer.status_code == 503, answer.text
            assert "may or may not have been recorded" in answer.json()["detail"]
            assert answer.headers["Retry-After"] == "1"
            logged += 2
            assert (
                settled_xlen(slow_redis, logged) == logged
            )  # the click, and the stalled event once
        with_id = {**click, "event_id": "e1"}
        assert http.post("/v1/events", json=click).status_code == 202
        stall = slow_redis.stall(1.5)
        assert http.post("/v1/events", json=with_id).status_code == 503
        stall.join()
        assert http.post("/v1/events", json=with_id).json()["status"] == "duplicate"
        assert settled_xlen(slow_redis, logged + 2) == logged + 2
        slow_redis.kill()
        down = http.post("/v1/events", json=click)
        assert down.status_code == 503
        assert "nothing was recorded" in down.json()["detail"]


def settled_xlen(server: OwnRedis, expected: int) -> int:
    """The stream's length once Redis has run the commands that waited out the stall: at
    least ``expected`` (within 5 s), then a moment more for a second run to show."""
    deadline = time.monotonic() + 5
    while server.client.xlen(STREAM) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    return server.client.xlen(STREAM)
