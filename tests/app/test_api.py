"""The service over HTTP (httpx against uvicorn), on the embedded store and on a real Redis."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from app.serving.registry import ModelLoadError
from app.settings import Settings
from tests.app.support import N_ITEMS, LiveServer, item_id, write_tiny_checkpoint
from training.checkpoint import WEIGHTS, set_current


@pytest.fixture(params=["embedded", "redis"])
def settings(request, tmp_path: Path) -> Settings:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    if request.param == "embedded":
        return Settings(model_dir=model_dir)
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return Settings(model_dir=model_dir, redis_url=url, key_prefix=prefix)


@pytest.fixture
def redis_settings(tmp_path: Path, redis_url: str, redis_prefix: str) -> Settings:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    return Settings(model_dir=model_dir, redis_url=redis_url, key_prefix=redis_prefix)


def ranked(response: httpx.Response) -> list[tuple[str, float]]:
    assert response.status_code == 200, response.text
    return [(r["item_id"], r["score"]) for r in response.json()["items"]]


def assert_same_ranking(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> None:
    assert [i for i, _ in a] == [i for i, _ in b]
    np.testing.assert_allclose([s for _, s in a], [s for _, s in b], rtol=1e-5, atol=1e-6)


def test_click_through_changes_recommendations_and_equals_stateless(settings: Settings) -> None:
    clicks = [item_id(r) for r in (3, 17, 42, 8)]
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        r = http.get("/v1/sessions/visit-1/recommendations", params={"n": 10})
        assert r.json()["fallback"] == "new_session"
        # a new visit gets the most popular items (row 0 is the most popular)
        assert [x["item_id"] for x in r.json()["items"]] == [str(item_id(i)) for i in range(10)]
        lists = []
        for i, click in enumerate(clicks):
            ack = http.post("/v1/events", json={"session_id": "visit-1", "item_id": click})
            assert ack.status_code == 202 and ack.json() == {"status": "logged", "known_item": True}
            got = http.get("/v1/sessions/visit-1/recommendations", params={"n": 10})
            assert got.json()["fallback"] is None
            stateless = http.post("/v1/recommendations", json={"items": clicks[: i + 1], "n": 10})
            assert_same_ranking(ranked(got), ranked(stateless))
            items = [x for x, _ in ranked(got)]
            assert not set(items) & {str(c) for c in clicks[: i + 1]}, "seen items are excluded"
            lists.append(items)
        assert all(a != b for a, b in itertools.pairwise(lists)), "every click counts"
        # exclude_seen=false may return a clicked item; the state is the same one
        same = http.get(
            "/v1/sessions/visit-1/recommendations", params={"n": 10, "exclude_seen": "false"}
        )
        assert_same_ranking(
            ranked(same),
            ranked(
                http.post(
                    "/v1/recommendations", json={"items": clicks, "n": 10, "exclude_seen": False}
                )
            ),
        )
        view = http.get("/v1/sessions/visit-1").json()
        assert view["n_events"] == 4 and view["items"] == [str(c) for c in clicks]
        assert view["state_covers"] == 4


def test_unknown_item_is_logged_but_leaves_the_state(settings: Settings) -> None:
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        http.post("/v1/events", json={"session_id": "s", "item_id": item_id(5)})
        ack = http.post("/v1/events", json={"session_id": "s", "item_id": "not-in-catalog"})
        assert ack.status_code == 202 and ack.json() == {"status": "logged", "known_item": False}
        assert_same_ranking(
            ranked(http.get("/v1/sessions/s/recommendations")),
            ranked(http.post("/v1/recommendations", json={"items": [item_id(5)]})),
        )
        only_unknown = http.post("/v1/events", json={"session_id": "u", "item_id": "nope"})
        assert only_unknown.status_code == 202
        assert http.get("/v1/sessions/u/recommendations").json()["fallback"] == "no_known_items"


def test_idempotent_event_id(settings: Settings) -> None:
    event = {"session_id": "s", "item_id": item_id(1), "event_id": "click-77"}
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        assert http.post("/v1/events", json=event).json()["status"] == "logged"
        assert http.post("/v1/events", json=event).json()["status"] == "duplicate"
        batch = [event, {**event, "event_id": "click-78"}, {**event, "event_id": "click-78"}]
        ack = http.post("/v1/events/batch", json={"events": batch})
        assert ack.status_code == 202
        assert (ack.json()["logged"], ack.json()["duplicates"]) == (1, 2)
        assert [r["status"] for r in ack.json()["results"]] == ["duplicate", "logged", "duplicate"]
        assert http.get("/v1/sessions/s").json()["n_events"] == 2
    if settings.redis_url:
        stream = redis.Redis.from_url(settings.redis_url).xlen(f"{settings.key_prefix}:events")
        assert stream == 2
    else:
        assert len(settings.resolved_event_log_path.read_text().splitlines()) == 2


def test_item_ids_are_strings_in_answers_whatever_the_shop_sent(settings: Settings) -> None:
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        # the tiny catalog stores integer ids 1000..1059; row 0 is the most popular
        fresh = http.get("/v1/sessions/none/recommendations", params={"n": 3}).json()
        assert [r["item_id"] for r in fresh["items"]] == ["1000", "1001", "1002"]
        http.post("/v1/events", json={"session_id": "as-int", "item_id": 1003})
        http.post("/v1/events", json={"session_id": "as-text", "item_id": "1003"})
        as_int = ranked(http.get("/v1/sessions/as-int/recommendations", params={"n": 5}))
        as_text = ranked(http.get("/v1/sessions/as-text/recommendations", params={"n": 5}))
        assert as_int == as_text and len(as_int) == 5
        assert all(isinstance(i, str) for i, _ in as_int) and "1003" not in dict(as_int)
        stateless = http.post("/v1/recommendations", json={"items": [1003], "n": 5})
        assert ranked(stateless) == as_int
        similar = http.get("/v1/items/1003/similar", params={"n": 4}).json()["items"]
        assert len(similar) == 4 and all(isinstance(r["item_id"], str) for r in similar)
        assert "1003" not in [r["item_id"] for r in similar]


def test_ttl_expiry(settings: Settings) -> None:
    settings = settings.model_copy(update={"session_ttl_seconds": 1})
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        http.post("/v1/events", json={"session_id": "brief", "item_id": item_id(2)})
        assert http.get("/v1/sessions/brief").status_code == 200
        time.sleep(2.2)
        assert http.get("/v1/sessions/brief").status_code == 404
        assert http.get("/v1/sessions/brief/recommendations").json()["fallback"] == "new_session"


def test_delete_session(settings: Settings) -> None:
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        http.post("/v1/events", json={"session_id": "gone", "item_id": item_id(2)})
        assert http.delete("/v1/sessions/gone").status_code == 204
        assert http.delete("/v1/sessions/gone").status_code == 404
        assert http.get("/v1/sessions/gone/recommendations").json()["fallback"] == "new_session"


def test_state_survives_an_app_restart(redis_settings: Settings) -> None:
    clicks = [item_id(r) for r in (11, 12, 30)]
    with LiveServer(redis_settings) as srv, httpx.Client(base_url=srv.url) as http:
        http.post(
            "/v1/events/batch", json={"events": [{"session_id": "s", "item_id": c} for c in clicks]}
        )
        before = ranked(http.get("/v1/sessions/s/recommendations"))
    with LiveServer(redis_settings) as srv, httpx.Client(base_url=srv.url) as http:
        view = http.get("/v1/sessions/s").json()
        assert (
            view["n_events"] == 3 and view["state_covers"] == 3
        )  # the stored state, not a rebuild
        assert_same_ranking(ranked(http.get("/v1/sessions/s/recommendations")), before)


def test_concurrent_events_of_one_session_lose_no_update(redis_settings: Settings) -> None:
    settings = redis_settings.model_copy(update={"max_session_items": 500})
    rng = np.random.default_rng(0)
    clicks = [item_id(int(r)) for r in rng.integers(0, N_ITEMS, 200)]
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:

        def click(c: int) -> int:
            # recommendation calls in between fold and write back states concurrently
            http.get("/v1/sessions/busy/recommendations", params={"n": 5})
            return http.post("/v1/events", json={"session_id": "busy", "item_id": c}).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(click, clicks)) == {202}
        view = http.get("/v1/sessions/busy").json()
        assert view["n_events"] == 200
        assert sorted(view["items"]) == sorted(str(c) for c in clicks)
        assert_same_ranking(
            ranked(http.get("/v1/sessions/busy/recommendations")),
            ranked(http.post("/v1/recommendations", json={"items": view["items"]})),
        )
    events = redis.Redis.from_url(settings.redis_url).xlen(f"{settings.key_prefix}:events")
    assert events == 200


def test_corrupt_checkpoint_is_rejected_and_the_old_model_keeps_serving(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    v1 = write_tiny_checkpoint(model_dir, seed=1)
    with LiveServer(Settings(model_dir=model_dir)) as srv, httpx.Client(base_url=srv.url) as http:
        assert http.get("/v1/sessions/x/recommendations").json()["model_version"] == v1
        v2 = write_tiny_checkpoint(model_dir, seed=2, activate=False)
        weights = model_dir / v2 / WEIGHTS
        data = bytearray(weights.read_bytes())
        data[-5] ^= 0xFF  # one flipped byte: the checksum no longer matches
        weights.write_bytes(bytes(data))
        set_current(model_dir, v2)
        with pytest.raises(ModelLoadError, match="checksum"):
            srv.registry.load_current()
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model"] == v1
        assert "checksum" in ready.json()["model_error"]
        assert (
            http.post("/v1/recommendations", json={"items": [1001]}).json()["model_version"] == v1
        )
        # a sound checkpoint is swapped in
        v3 = write_tiny_checkpoint(model_dir, seed=3)
        srv.registry.load_current()
        assert (
            http.post("/v1/recommendations", json={"items": [1001]}).json()["model_version"] == v3
        )


def test_no_model_answers_503_and_still_logs_events(tmp_path: Path) -> None:
    with (
        LiveServer(Settings(model_dir=tmp_path / "empty")) as srv,
        httpx.Client(base_url=srv.url) as http,
    ):
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 503
        r = http.get("/v1/sessions/s/recommendations")
        assert r.status_code == 503 and "Retry-After" in r.headers
        assert http.post("/v1/events", json={"session_id": "s", "item_id": 5}).status_code == 202


def test_bad_input_gets_a_clear_4xx(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, max_batch_events=3, max_body_bytes=4096, max_n=50)
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        cases = [
            (http.post("/v1/events", json={"item_id": 1}), 422),
            (http.post("/v1/events", json={"session_id": "s", "item_id": 1.5}), 422),
            (http.post("/v1/events", json={"session_id": "s", "item_id": True}), 422),
            (http.post("/v1/events", json={"session_id": "", "item_id": 1}), 422),
            (http.post("/v1/events", json={"session_id": "a\nb", "item_id": 1}), 422),
            (
                http.post("/v1/events", json={"session_id": "s", "item_id": 1, "event_type": "x"}),
                422,
            ),
            (http.post("/v1/events", json={"session_id": "s", "item_id": 1, "extra": 1}), 422),
            (
                http.post(
                    "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
                ),
                422,
            ),
            (http.post("/v1/events/batch", json={"events": []}), 422),
            (
                http.post(
                    "/v1/events/batch", json={"events": [{"session_id": "s", "item_id": 1}] * 4}
                ),
                413,
            ),
            (
                http.post(
                    "/v1/events/batch",
                    json={
                        "events": [{"session_id": "s" * 100, "item_id": 1}] * 3,
                        "pad": "x" * 5000,
                    },
                ),
                413,
            ),
            (http.get("/v1/sessions/s/recommendations", params={"n": 0}), 422),
            (http.get("/v1/sessions/s/recommendations", params={"n": 51}), 422),
            (http.get("/v1/sessions/s/recommendations", params={"diversity": -1}), 422),
            (http.get("/v1/sessions/s/recommendations", params={"n": "many"}), 422),
            (http.post("/v1/recommendations", json={"items": [1], "n": -3}), 422),
            (http.get("/v1/items/999999/similar"), 404),
            (http.get("/v1/sessions/never-seen"), 404),
            (http.delete("/v1/sessions/never-seen"), 404),
        ]
        for i, (response, expected) in enumerate(cases):
            assert response.status_code == expected, (i, response.text)
            assert "detail" in response.json()
