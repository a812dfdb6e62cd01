"""Event times from the future: beyond ``NEXTITEM_MAX_CLOCK_SKEW_SECONDS`` they are logged at
the time the service received them.

Why: a retrain holds out the newest visits for its quality gate, so a client that dates
its events ahead could choose the hold-out and steer the gate.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from app.events.snapshot import file_snapshot
from app.settings import Settings
from tests.app.support import LiveServer, item_id, write_tiny_checkpoint

SKEW = 60


@pytest.fixture(params=["embedded", "redis"])
def settings(request, tmp_path: Path) -> Settings:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    if request.param == "embedded":
        return Settings(model_dir=model_dir, max_clock_skew_seconds=SKEW)
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return Settings(
        model_dir=model_dir, redis_url=url, key_prefix=prefix, max_clock_skew_seconds=SKEW
    )


def test_a_time_too_far_ahead_is_logged_as_the_time_received(settings: Settings) -> None:
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        before = time.time()
        year_ahead = before + 365 * 86_400
        near = before + SKEW / 2  # a clock a little fast is believed
        fast = http.post(
            "/v1/events",
            json={"session_id": "fast", "item_id": item_id(1), "timestamp": year_ahead},
        )  # plain: the fast path
        batch = http.post(
            "/v1/events/batch",
            json={
                "events": [
                    {"session_id": "batch", "item_id": item_id(2), "timestamp": near},
                    {
                        "session_id": "batch",
                        "item_id": item_id(3),
                        "timestamp": "2099-01-01T00:00:00Z",
                    },
                ]
            },
        )
        after = time.time()
        assert fast.status_code == 202 and batch.status_code == 202
        assert before <= http.get("/v1/sessions/fast").json()["last_event"] <= after
        assert before <= http.get("/v1/sessions/batch").json()["last_event"] <= after
        metrics = http.get("/metrics").text
        assert 'nextitem_events_total{outcome="future_clamped"} 2.0' in metrics
        assert 'nextitem_events_total{outcome="logged"} 3.0' in metrics
        if settings.embedded:
            logged = file_snapshot(settings.resolved_event_log_path).events
            ts = dict(zip(logged["item_id"], logged["ts"], strict=True))
            assert ts[str(item_id(2))] == pytest.approx(near)
            for clamped in (item_id(1), item_id(3)):
                assert before <= ts[str(clamped)] <= after


def test_the_skew_is_a_setting_with_a_floor() -> None:
    assert Settings().max_clock_skew_seconds == 300
    with pytest.raises(ValueError):
        Settings(max_clock_skew_seconds=-1)


def test_a_retrain_reads_no_time_ahead_of_its_snapshot(tmp_path: Path, monkeypatch) -> None:
    """Events logged before the clamp existed (or written to the log by other means) are
    read at the snapshot's time at the latest: the hold-out is the newest visits by then."""
    from app.events.log import FileEventLog, LoggedEvent
    from app.jobs import worker
    from app.jobs.store import FileJobStore, new_job
    from app.schemas import RetrainRequest

    monkeypatch.delenv("NEXTITEM_REDIS_URL", raising=False)
    monkeypatch.setenv("NEXTITEM_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("NEXTITEM_MAX_CLOCK_SKEW_SECONDS", str(SKEW))
    now = time.time()
    log = FileEventLog(Path(tmp_path) / "event-log.jsonl")
    log.append(
        [
            LoggedEvent("old", "1", now - 100, "view"),
            LoggedEvent("near", "2", now + SKEW / 2, "view"),
            LoggedEvent("steer", "3", now + 86_400 * 365, "view"),
        ]
    )
    log.close()
    record = new_job(RetrainRequest())
    FileJobStore(tmp_path / "jobs").create(record)
    seen = {}

    def trainer(snapshot, config, model_dir, active, progress):
        seen.update(zip(snapshot.events["session_id"], snapshot.events["ts"], strict=True))
        return {"passed": False, "version": "v", "metrics": {}}

    monkeypatch.setattr(worker, "run_trainer", trainer)
    assert worker.run_job(record.job_id) == "rejected"
    assert seen["old"] == pytest.approx(now - 100)
    assert seen["near"] == pytest.approx(now + SKEW / 2)
    assert now <= seen["steer"] <= time.time()
