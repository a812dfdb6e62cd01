"""Bounds and back-pressure over HTTP: a request past a bound is answered 503 with
Retry-After at once, the same on the fast path as on the route, and nothing of it is done."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.serving.scorer import ScoreJob, Scorer, ScorerBusy
from app.settings import Settings
from tests.app.support import LiveServer, item_id, write_tiny_checkpoint


def _metric(client: httpx.Client, name: str, label: str = "") -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")) and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def embedded_twins(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Embedded servers with and without the fast path, each with its own log, remembering
    at most two event ids."""
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    base = {"model_dir": model_dir, "max_event_ids": 2, "retry_after_seconds": 4}
    with (
        LiveServer(Settings(**base, event_log_path=tmp_path / "f.jsonl", fast_path=True)) as f,
        LiveServer(Settings(**base, event_log_path=tmp_path / "s.jsonl", fast_path=False)) as s,
        httpx.Client(base_url=f.url) as a,
        httpx.Client(base_url=s.url) as b,
    ):
        yield a, b


def test_event_ids_at_their_cap_give_503_on_both_paths(
    embedded_twins: tuple[httpx.Client, httpx.Client], tmp_path: Path
) -> None:
    answers = []
    for client in embedded_twins:
        for k in (1, 2):
            click = {"session_id": "s", "item_id": item_id(k), "event_id": f"e{k}"}
            assert client.post("/v1/events", json=click).status_code == 202
        third = {"session_id": "s", "item_id": item_id(3), "event_id": "e3"}
        answers.append(
            client.post(
                "/v1/events",
                content=json.dumps(third).encode(),
                headers={"content-type": "application/json"},
            )
        )
        assert client.post("/v1/events/batch", json={"events": [third]}).status_code == 503
        assert client.get("/v1/sessions/s").json()["n_events"] == 2  # nothing of it recorded
        assert client.post("/v1/events", json={"session_id": "s", "item_id": 4}).status_code == 202
        assert _metric(client, "nextitem_overload_total", 'reason="event_ids_full"') == 2
    fast, route = answers
    assert fast.status_code == route.status_code == 503
    assert fast.headers["retry-after"] == route.headers["retry-after"] == "4"
    assert fast.content == route.content
    assert "event ids" in fast.json()["detail"]
    for log in ("f.jsonl", "s.jsonl"):
        assert len((tmp_path / log).read_text().splitlines()) == 3


# ---- the scoring threads' queue -----------------------------------------------------------------


class _Index:
    size = 10

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(q), k), np.float32), np.zeros((len(q), k), np.int64)


@dataclass
class _Model:
    index: _Index


def _job(prepare) -> ScoreJob:
    return ScoreJob(_Model(_Index()), prepare, 3, lambda scores, rows: rows.tolist())


def test_a_full_scorer_refuses_at_once_and_takes_jobs_again_once_drained() -> None:
    """Three jobs held in a one-thread scorer bounded at three (one being scored, two
    waiting): a fourth is refused while the thread is still held, without waiting."""
    gate = threading.Event()
    scorer = Scorer(threads=1, max_pending=3)

    def held() -> np.ndarray:
        gate.wait(10)
        return np.zeros((1, 4), np.float32)

    def quick() -> np.ndarray:
        return np.zeros((1, 4), np.float32)

    async def run() -> None:
        waiting = [asyncio.ensure_future(scorer.score(_job(held))) for _ in range(3)]
        await asyncio.sleep(0.05)  # all three submitted, the thread held by the first
        with pytest.raises(ScorerBusy) as refused:
            await scorer.score(_job(quick))
        assert not gate.is_set()  # answered while the thread was still busy
        assert "busy" in refused.value.detail
        gate.set()
        assert await asyncio.gather(*waiting) == [[[0, 0, 0]]] * 3
        assert await scorer.score(_job(quick)) == [[0, 0, 0]]

    try:
        asyncio.run(run())
    finally:
        gate.set()
        scorer.close()


@pytest.fixture
def full_scorer_twins(tmp_path: Path) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Embedded servers with and without the fast path whose scorers take no job at all,
    with one visit of known clicks each."""
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    base = {"model_dir": model_dir, "retry_after_seconds": 5}
    with (
        LiveServer(Settings(**base, event_log_path=tmp_path / "f.jsonl", fast_path=True)) as f,
        LiveServer(Settings(**base, event_log_path=tmp_path / "s.jsonl", fast_path=False)) as s,
        httpx.Client(base_url=f.url) as a,
        httpx.Client(base_url=s.url) as b,
    ):
        for srv, client in ((f, a), (s, b)):
            for click in (3, 17, 42):
                client.post("/v1/events", json={"session_id": "v", "item_id": item_id(click)})
            srv.app.state.service.scorer.max_pending = 0
        yield a, b


def test_a_full_scorer_gives_the_same_503_on_both_paths(
    full_scorer_twins: tuple[httpx.Client, httpx.Client],
) -> None:
    fast, route = (c.get("/v1/sessions/v/recommendations?n=5") for c in full_scorer_twins)
    assert fast.status_code == route.status_code == 503, (fast.text, route.text)
    assert fast.content == route.content and "busy" in fast.json()["detail"]
    assert fast.headers["retry-after"] == route.headers["retry-after"] == "5"
    assert fast.headers["content-type"] == route.headers["content-type"]
    client = full_scorer_twins[0]
    stateless = client.post("/v1/recommendations", json={"items": [item_id(3)]})
    assert stateless.status_code == 503 and stateless.headers["retry-after"] == "5"
    assert client.get(f"/v1/items/{item_id(3)}/similar").status_code == 503
    # a visit without clicks needs no scoring: popularity, as before
    assert client.get("/v1/sessions/new/recommendations").status_code == 200
    assert _metric(client, "nextitem_overload_total", 'reason="scorer_busy"') == 3


# ---- overload over HTTP -------------------------------------------------------------------------

#: How long the scoring thread takes per request in the overload tests: a heavy model, by
#: sleeping, so that the figures do not depend on the CPU a busy machine leaves the test.
JOB_SECONDS = 0.2


@pytest.fixture
def slow_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Scorer._score

    def slow(jobs: list[ScoreJob], outcomes: list) -> float:
        time.sleep(JOB_SECONDS * len(jobs))
        return real(jobs, outcomes)

    monkeypatch.setattr(Scorer, "_score", staticmethod(slow))


async def _timed_gets(
    url: str, paths: list[str], waves: int
) -> list[tuple[int, float, httpx.Response]]:
    """``waves`` rounds of all ``paths`` at once: (status, seconds, response) of each."""

    async def one(client: httpx.AsyncClient, path: str) -> tuple[int, float, httpx.Response]:
        start = time.perf_counter()
        response = await client.get(path)
        return response.status_code, time.perf_counter() - start, response

    limits = httpx.Limits(max_connections=len(paths))
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        out = []
        for _ in range(waves):
            out += await asyncio.gather(*(one(client, p) for p in paths))
        return out


def _p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def test_four_times_capacity_gets_fast_503s_and_the_accepted_stay_quick(
    slow_scoring: None, tmp_path: Path
) -> None:
    """One scoring thread, at most three requests waiting or scored, and twelve at once,
    three times over. Queued without a bound, the last of a wave would wait 12 x 0.2 s."""
    capacity = 3
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(
        model_dir=model_dir,
        search_workers=1,
        search_batch_max=1,
        search_queue_max=capacity,
        retry_after_seconds=2,
    )
    visits = [f"v{i}" for i in range(4 * capacity)]
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        for v in visits:
            assert (
                http.post("/v1/events", json={"session_id": v, "item_id": item_id(3)}).status_code
                == 202
            )
        paths = [f"/v1/sessions/{v}/recommendations" for v in visits]
        results = asyncio.run(_timed_gets(srv.url, paths, waves=3))
    accepted = [t for status, t, _ in results if status == 200]
    refused = [(t, r) for status, t, r in results if status == 503]
    assert len(accepted) + len(refused) == len(results)  # nothing else: no 500, no timeout
    # the accepted waited behind at most the bound's requests, never behind the whole wave
    assert _p99(accepted) < (capacity + 2) * JOB_SECONDS, sorted(accepted)
    assert len(accepted) >= 3 and len(refused) >= len(results) // 2
    for _, response in refused:
        assert response.headers["retry-after"] == "2" and "busy" in response.json()["detail"]
    # a refusal waits for no scoring (queued, it would wait for three at least)
    assert max(t for t, _ in refused) < JOB_SECONDS, sorted(t for t, _ in refused)


def test_uvicorn_answers_503_itself_past_the_concurrency_limit(
    slow_scoring: None, tmp_path: Path
) -> None:
    """Past NEXTITEM_LIMIT_CONCURRENCY open connections or requests in progress, uvicorn
    answers 503 before the application sees the request (its own plain answer, without
    Retry-After); within it, every request is served."""
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, search_workers=1, limit_concurrency=4)
    with LiveServer(settings) as srv:
        click = {"session_id": "v", "item_id": item_id(3)}
        assert httpx.post(f"{srv.url}/v1/events", json=click).status_code == 202
        paths = ["/v1/sessions/v/recommendations"] * 8
        burst = asyncio.run(_timed_gets(srv.url, paths, waves=1))
        one_by_one = asyncio.run(_timed_gets(srv.url, paths[:1], waves=3))
    refused = [t for status, t, _ in burst if status == 503]
    assert refused and {status for status, _, _ in burst} <= {200, 503}
    assert max(refused) < JOB_SECONDS  # answered without waiting for the scoring
    assert [status for status, _, _ in one_by_one] == [200] * 3
