"""Bounds and back-pressure over HTTP: a request past a bound is answered 503 with
Retry-After at once, the same on the fast path as on the route, and nothing of it is done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
