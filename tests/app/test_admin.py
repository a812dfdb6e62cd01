"""The admin API over HTTP: auth, model versions, activation and rollback, hot swap.

Jobs that really train are in ``test_retrain_e2e.py``; here every model is a tiny
checkpoint, so swaps are about the service, not about training.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from app.jobs.channel import publish_model
from app.settings import Settings
from tests.app.support import LiveServer, OwnRedis, item_id, write_tiny_checkpoint
from training.checkpoint import WEIGHTS, current_version, set_current

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(params=["embedded", "redis"])
def settings(request, tmp_path: Path) -> Settings:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir, seed=0)
    common = {"model_dir": model_dir, "admin_token": TOKEN, "model_poll_seconds": 0.2}
    if request.param == "embedded":
        return Settings(**common)
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return Settings(**common, redis_url=url, key_prefix=prefix)


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_admin_needs_the_bearer_token(settings: Settings) -> None:
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.get("/admin/models")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.get("/admin/models", headers={"Authorization": "Basic abc"}).status_code == 401
        bad = c.post("/admin/retrain", json={}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 403 and bad.json()["detail"] == "wrong admin token"
        assert c.get("/admin/models", headers=AUTH).status_code == 200


def test_redis_service_without_a_token_refuses_admin(tmp_path: Path, redis_url, redis_prefix):
    write_tiny_checkpoint(tmp_path)
    s = Settings(model_dir=tmp_path, redis_url=redis_url, key_prefix=redis_prefix)
    with LiveServer(s) as srv:
        r = httpx.get(f"{srv.url}/admin/models", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 403 and "NEXTITEM_ADMIN_TOKEN" in r.json()["detail"]


def test_embedded_service_without_a_token_makes_one_and_prints_it(tmp_path, capfd) -> None:
    write_tiny_checkpoint(tmp_path)
    with LiveServer(Settings(model_dir=tmp_path)) as srv:
        token = srv.app.state.admin_token
        assert len(token) >= 32
        printed = capfd.readouterr().err
        assert printed.count(token) == 1
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{srv.url}/admin/models", headers=auth).status_code == 200
    with LiveServer(Settings(model_dir=tmp_path)) as again:
        assert again.app.state.admin_token != token  # a new run, a new token


def test_models_list_activate_and_roll_back(settings: Settings) -> None:
    first = current_version(settings.model_dir)
    time.sleep(1.1)  # versions are named by the second
    second = write_tiny_checkpoint(settings.model_dir, seed=1, activate=False)
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url, headers=AUTH) as c:
        view = c.get("/admin/models").json()
        assert view["current"] == view["serving"] == first
        assert [v["version"] for v in view["versions"]] == [second, first]
        assert [v["current"] for v in view["versions"]] == [False, True]
        assert view["versions"][0]["kind"] == "gru4rec"

        r = c.post(f"/admin/models/{second}/activate")
        assert r.status_code == 200
        assert r.json() == {
            "version": second,
            "previous": first,
            "announced": settings.redis_url is not None,
        }
        assert current_version(settings.model_dir) == second
        assert srv.registry.active.version == second  # this process at once, not at next poll
        recs = c.post("/v1/recommendations", json={"items": [item_id(3)]}).json()
        assert recs["model_version"] == second

        metrics = c.get("/metrics").text
        assert 'nextitem_model_swaps_total{outcome="swapped"} 2.0' in metrics  # start-up + 1
        assert "nextitem_model_load_seconds_count 2.0" in metrics
        back = c.post(f"/admin/models/{first}/activate")
        assert back.json()["previous"] == second
        assert c.get("/admin/models").json()["serving"] == first

        assert c.post("/admin/models/nope/activate").status_code == 404
        assert c.post("/admin/models/..%2FCURRENT/activate").status_code in (404, 422)


def test_a_broken_version_is_refused_and_nothing_changes(settings: Settings) -> None:
    first = current_version(settings.model_dir)
    time.sleep(1.1)
    broken = write_tiny_checkpoint(settings.model_dir, seed=2, activate=False)
    weights = settings.model_dir / broken / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-8] + b"tampered")
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url, headers=AUTH) as c:
        r = c.post(f"/admin/models/{broken}/activate")
        assert r.status_code == 409 and "checksum" in r.json()["detail"]
        assert 'nextitem_model_swaps_total{outcome="failed"} 1.0' in c.get("/metrics").text
        assert current_version(settings.model_dir) == first
        assert srv.registry.active.version == first
        # When CURRENT is pointed at it from outside, the watcher tries it and keeps the old
        # model: the failed load is counted (a dead watcher would count nothing) ...
        set_current(settings.model_dir, broken)
        wait_for(lambda: 'swaps_total{outcome="failed"} 2.0' in c.get("/metrics").text)
        assert srv.registry.active.version == first
        assert c.get("/readyz").status_code == 200
        # ... and the same watcher still takes a good version named next.
        time.sleep(1.1)
        good = write_tiny_checkpoint(settings.model_dir, seed=5)  # writes CURRENT
        wait_for(lambda: srv.registry.active.version == good)


def test_every_process_follows_current(settings: Settings) -> None:
    """A new CURRENT (as the worker writes it) is picked up by the poll, with no request lost:
    requests keep coming from another thread through the swap, and every one is answered."""
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as c:
        for i in range(3):
            c.post("/v1/events", json={"session_id": "v", "item_id": item_id(i)})
        before = c.get("/v1/sessions/v/recommendations").json()
        first = before["model_version"]
        answers: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def keep_asking() -> None:
            with httpx.Client(base_url=srv.url) as asker:
                while not stop.is_set():
                    r = asker.get("/v1/sessions/v/recommendations")
                    answers.append((r.status_code, r.json().get("model_version")))
                    time.sleep(0.005)  # the server's threads share this process's interpreter

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            time.sleep(1.1)
            new = write_tiny_checkpoint(settings.model_dir, seed=3)  # writes CURRENT
            wait_for(lambda: srv.registry.active.version == new, timeout=30)
            count = len(answers)
            wait_for(lambda: len(answers) > count + 20, timeout=30)  # well past the swap
        finally:
            stop.set()
            asker.join()
        versions = [v for _, v in answers]
        assert {code for code, _ in answers} == {200}
        assert first in versions and new in versions
        assert versions == sorted(versions, key=[first, new].index)  # old, then only new
        after = c.get("/v1/sessions/v/recommendations")
        assert after.status_code == 200 and after.json()["model_version"] == new
        assert after.json()["fallback"] is None
        # the state the old model cached was rebuilt from the visit's items, for the new one
        stateless = c.post(
            "/v1/recommendations", json={"items": [item_id(i) for i in range(3)]}
        ).json()
        assert after.json()["items"] == stateless["items"]
        assert after.json()["items"] != before["items"]
        view = c.get("/v1/sessions/v").json()
        assert view["state_version"] == new and view["state_covers"] == 3


def test_pubsub_announcement_swaps_without_waiting_for_the_poll(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    write_tiny_checkpoint(tmp_path, seed=0)
    s = Settings(
        model_dir=tmp_path,
        redis_url=redis_url,
        key_prefix=redis_prefix,
        admin_token=TOKEN,
        model_poll_seconds=60,
    )
    with LiveServer(s) as srv:
        time.sleep(1.1)
        new = write_tiny_checkpoint(tmp_path, seed=4)
        time.sleep(0.3)  # the poll is a minute away: only the message can trigger the swap
        assert srv.registry.active.version != new
        publish_model(redis.Redis.from_url(redis_url), redis_prefix, new)
        wait_for(lambda: srv.registry.active.version == new, timeout=5)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
def test_admin_with_redis_down(tmp_path: Path) -> None:
    """Jobs need Redis (503, nothing queued); swaps do not: CURRENT is polled all the same."""
    own = OwnRedis().start()
    try:
        first = write_tiny_checkpoint(tmp_path, seed=0)
        time.sleep(1.1)
        second = write_tiny_checkpoint(tmp_path, seed=1, activate=False)
        s = Settings(
            model_dir=tmp_path, redis_url=own.url, admin_token=TOKEN, model_poll_seconds=0.2
        )
        with LiveServer(s) as srv, httpx.Client(base_url=srv.url, headers=AUTH) as c:
            own.kill()
            r = c.post("/admin/retrain", json={})
            assert r.status_code == 503 and r.headers["Retry-After"] == "1"
            assert c.get("/admin/jobs/abc123").status_code == 503
            ok = c.post(f"/admin/models/{second}/activate")
            assert ok.status_code == 200 and ok.json()["announced"] is False
            assert srv.registry.active.version == second
            set_current(tmp_path, first)  # as a worker elsewhere would
            wait_for(lambda: srv.registry.active.version == first)
    finally:
        own.kill()


def test_models_reports_the_served_directory_of_a_renamed_checkpoint(tmp_path: Path) -> None:
    """``serving`` and ``current`` name the same thing, the directory, when the manifest's
    version differs (a checkpoint copied under another name): a dashboard compares them."""
    model_dir = tmp_path / "models"
    version = write_tiny_checkpoint(model_dir, activate=False)
    (model_dir / version).rename(model_dir / "copied-from-staging")
    set_current(model_dir, "copied-from-staging")
    with (
        LiveServer(Settings(model_dir=model_dir, admin_token=TOKEN)) as srv,
        httpx.Client(base_url=srv.url, headers=AUTH) as c,
    ):
        view = c.get("/admin/models").json()
        assert view["current"] == view["serving"] == "copied-from-staging"
        assert [v["version"] for v in view["versions"]] == ["copied-from-staging"]
        assert [v["current"] for v in view["versions"]] == [True]
