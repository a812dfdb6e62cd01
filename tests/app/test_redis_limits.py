"""Redis at its bounds: its memory limit (``maxmemory``, ``noeviction``) and the event
stream's length. Ingestion answers 503 with Retry-After and writes nothing of the refused
call; nothing is evicted or trimmed to make room.

The memory limit is set on a redis-server of the test's own (the shared server's
configuration is never changed).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.events.archive import EventArchive
from app.events.log import LoggedEvent, stream_key
from app.events.snapshot import redis_snapshot
from app.sessions.store import RedisFull, RedisSessionStore, StreamFull
from app.settings import Settings
from tests.app.support import LiveServer, OwnRedis, item_id, write_tiny_checkpoint

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="no redis-server"
)

STREAM = "nextitem:events"


@pytest.fixture
def tiny_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder, "--maxmemory-policy", "noeviction").start()
    try:
        yield server
    finally:
        server.kill()


def ev(session: str, item: int, event_id: str | None = None) -> LoggedEvent:
    return LoggedEvent(session, str(item), 1.5, "view", event_id)


def _batch(k: int, size: int = 50) -> list[LoggedEvent]:
    return [LoggedEvent(f"v{k}", str(i), 1.5, "view", f"b{k}-{i}") for i in range(size)]


@needs_redis_server
def test_redis_at_its_memory_limit_refuses_whole_calls(tiny_redis: OwnRedis) -> None:
    """Batches go in until Redis is full; the refused one left nothing (no entry, no
    visit, no event id), and once there is room again its resend is logged, not a repeat."""
    tiny_redis.limit(300_000)
    store = RedisSessionStore(tiny_redis.url, "nextitem", 600, 50, 600)

    async def run() -> None:
        try:
            for k in range(10_000):
                try:
                    assert await store.ingest(_batch(k)) == [True] * 50
                except RedisFull as exc:
                    refused = k
                    assert "memory" in exc.detail and "nothing was recorded" in exc.detail
                    break
            else:
                pytest.fail("Redis never reached its limit")
            assert refused > 0
            assert tiny_redis.client.xlen(STREAM) == 50 * refused  # whole batches only
            assert await store.get(f"v{refused}") is None
            assert not tiny_redis.client.exists(f"nextitem:eid:b{refused}-0")
            tiny_redis.limit(0)
            assert await store.ingest(_batch(refused)) == [True] * 50
        finally:
            await store.close()

    asyncio.run(run())


@needs_redis_server
@pytest.mark.parametrize("fast_path", [True, False])
def test_redis_full_is_a_503_with_retry_after(
    tiny_redis: OwnRedis, tmp_path: Path, fast_path: bool
) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(
        model_dir=model_dir, redis_url=tiny_redis.url, retry_after_seconds=3, fast_path=fast_path
    )
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        click = {"session_id": "s", "item_id": item_id(1), "event_id": "e1"}
        assert http.post("/v1/events", json=click).status_code == 202
        tiny_redis.client.config_set("maxmemory", 1)  # below what it holds: full
        body = json.dumps({**click, "event_id": "e2"}).encode()
        refused = http.post(
            "/v1/events", content=body, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "3"
        assert "memory" in refused.json()["detail"]
        assert http.post("/v1/events/batch", json={"events": [click]}).status_code == 503
        assert http.get("/readyz").status_code == 200  # full is not down
        tiny_redis.limit(0)
        assert (
            http.post(
                "/v1/events", content=body, headers={"content-type": "application/json"}
            ).json()["status"]
            == "logged"
        )
        assert tiny_redis.client.xlen(STREAM) == 2


@needs_redis_server
def test_a_redis_that_evicts_or_has_no_limit_is_named_at_start(
    tiny_redis: OwnRedis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An eviction policy drops logged events, event ids and visits without a word, and a
    Redis without a memory limit grows until its host kills it: the service says so."""
    from app.redis_client import memory_policy_warnings

    tiny_redis.client.config_set("maxmemory-policy", "allkeys-lru")
    tiny_redis.limit(10_000_000)
    (warning,) = memory_policy_warnings(tiny_redis.client)
    assert "allkeys-lru" in warning and "noeviction" in warning
    tiny_redis.client.config_set("maxmemory-policy", "noeviction")
    tiny_redis.limit(0)
    (warning,) = memory_policy_warnings(tiny_redis.client)
    assert "maxmemory" in warning
    tiny_redis.limit(10_000_000)
    assert memory_policy_warnings(tiny_redis.client) == []

    tiny_redis.client.config_set("maxmemory-policy", "volatile-ttl")
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    with (
        caplog.at_level("WARNING"),
        LiveServer(Settings(model_dir=model_dir, redis_url=tiny_redis.url)),
    ):
        pass
    assert any("volatile-ttl" in r.getMessage() for r in caplog.records)


def test_a_full_stream_refuses_ingestion_until_a_retrain_archives_it(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """The stream holds what no retrain has archived yet: past its bound, ingestion is
    refused (503) and nothing is trimmed; the archive makes room again."""
    store = RedisSessionStore(redis_url, redis_prefix, 600, 50, 600, max_stream_events=10)
    client = redis.Redis.from_url(redis_url)
    stream = stream_key(redis_prefix)

    async def run() -> None:
        try:
            assert await store.ingest([ev(f"s{i}", i) for i in range(6)]) == [True] * 6
            # a call that starts under the bound goes in whole
            assert await store.ingest([ev("t", i, f"e{i}") for i in range(6)]) == [True] * 6
            with pytest.raises(StreamFull) as refused:
                await store.ingest([ev("t", 7, "e7"), ev("u", 8)])
            assert "nothing was recorded" in refused.value.detail
            assert client.xlen(stream) == 12  # nothing trimmed, nothing added
            assert (await store.get("t")).n_events == 6 and await store.get("u") is None
            assert not client.exists(f"{redis_prefix}:eid:e7")
            archived = redis_snapshot(client, redis_prefix, EventArchive(tmp_path / "archive"))
            assert len(archived) == 12 and client.xlen(stream) == 0
            assert await store.ingest([ev("t", 7, "e7"), ev("u", 8)]) == [True, True]
        finally:
            await store.close()

    asyncio.run(run())


def test_a_full_stream_is_a_503(redis_url: str, redis_prefix: str, tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(
        model_dir=model_dir, redis_url=redis_url, key_prefix=redis_prefix, max_stream_events=1
    )
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        click = {"session_id": "s", "item_id": item_id(1)}
        assert http.post("/v1/events", json=click).status_code == 202
        refused = http.post("/v1/events", json=click)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "retrain" in refused.json()["detail"]
