"""Redis stopped mid-test: ingestion answers 503 with Retry-After, recommendations fall back,
and the service recovers by itself when Redis is back. Uses its own redis-server process."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from app.settings import Settings
from tests.app.support import LiveServer, OwnRedis, item_id, write_tiny_checkpoint

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis().start()
    yield server
    server.kill()


def test_redis_down_then_back(own_redis: OwnRedis, tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, redis_url=own_redis.url, retry_after_seconds=2)
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        click = {"session_id": "s", "item_id": item_id(4)}
        assert http.post("/v1/events", json=click).status_code == 202
        assert http.get("/v1/sessions/s/recommendations").json()["fallback"] is None

        own_redis.kill()
        down = http.post("/v1/events", json=click)
        assert down.status_code == 503 and down.headers["Retry-After"] == "2"
        assert http.post("/v1/events/batch", json={"events": [click]}).status_code == 503
        recs = http.get("/v1/sessions/s/recommendations", params={"n": 5})
        assert recs.status_code == 200
        assert recs.json()["fallback"] == "store_unavailable"
        assert [r["item_id"] for r in recs.json()["items"]] == [str(item_id(i)) for i in range(5)]
        # the stateless form needs no store at all
        stateless = http.post("/v1/recommendations", json={"items": [item_id(4)]})
        assert stateless.status_code == 200 and stateless.json()["fallback"] is None
        assert http.get("/readyz").status_code == 503
        assert http.get("/v1/sessions/s").status_code == 503
        assert "nextitem_store_up 0.0" in http.get("/metrics").text

        own_redis.start()  # an empty Redis (no persistence) on the same port
        assert http.post("/v1/events", json=click).status_code == 202
        assert http.get("/readyz").status_code == 200
        recs = http.get("/v1/sessions/s/recommendations").json()
        assert recs["fallback"] is None
        assert redis.Redis.from_url(own_redis.url).xlen("nextitem:events") == 1


def test_a_redis_that_hangs_gets_a_quick_503_and_a_resend_is_logged_once(
    own_redis: OwnRedis, tmp_path: Path
) -> None:
    """Redis stopped (SIGSTOP) longer than the client's timeout, as a stalled fsync or a long
    command would: ingestion answers 503 within about that timeout instead of hanging,
    recommendations fall back, and once Redis resumes, the client's resends (same event
    ids) leave each event in the log exactly once, whatever the stalled calls did."""
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, redis_url=own_redis.url, redis_timeout_seconds=0.3)
    client = redis.Redis.from_url(own_redis.url)
    events = [{"session_id": "s", "item_id": item_id(i), "event_id": f"e{i}"} for i in range(4)]
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=10) as http:
        assert http.post("/v1/events", json=events[0]).status_code == 202
        own_redis.pause()
        try:
            unanswered = []
            for event in events[1:]:
                started = time.monotonic()
                r = http.post("/v1/events", json=event)
                assert r.status_code == 503 and r.headers["Retry-After"] == "1"
                assert time.monotonic() - started < 3.0  # the timeout and one retry, not a hang
                unanswered.append(event)
            recs = http.get("/v1/sessions/s/recommendations")
            assert recs.status_code == 200 and recs.json()["fallback"] == "store_unavailable"
        finally:
            own_redis.resume()
        for event in unanswered:  # the client resends what was not acknowledged
            assert http.post("/v1/events", json=event).status_code == 202
        logged = [f[b"event_id"].decode() for _, f in client.xrange("nextitem:events")]
        assert sorted(logged) == ["e0", "e1", "e2", "e3"]  # none lost, none doubled
        view = http.get("/v1/sessions/s").json()
        assert view["n_events"] == 4
