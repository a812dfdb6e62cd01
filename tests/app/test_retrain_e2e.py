"""End to end over HTTP: events in, retrain, new model served; a failing gate keeps the old one.

Real parts throughout: the live service, Redis (or the embedded log), the rq
worker command in its own process (or the embedded job runner), real training
on clicks of a shared dataset (yoochoose-100k test sessions, first 800).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import redis
from typer.testing import CliRunner

from app.cli import cli
from app.events.archive import EventArchive
from app.events.log import stream_key
from app.jobs.queue import settings_env
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint
from tests.app.test_admin import wait_for
from tests.conftest import needs_shared_data
from training.checkpoint import current_version

TOKEN = "e2e-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUICK = {"params": {"n_epochs": 1}, "min_item_support": 1}


def shop_events(n_sessions: int = 800, offset: int = 0) -> list[dict]:
    from training.data import load_dataset

    ds = load_dataset("yoochoose-100k")
    test = ds.parts["test"]
    rows = np.arange(offset, offset + n_sessions)
    sess = test.select(np.isin(np.arange(test.n_sessions), rows))
    session = np.repeat(np.arange(sess.n_sessions) + offset, sess.lengths)
    ids = ds.items.ids[sess.items]
    return [{"session_id": f"v{s}", "item_id": str(i)} for s, i in zip(session, ids, strict=True)]


def ingest(c: httpx.Client, events: list[dict]) -> int:
    logged = 0
    for lo in range(0, len(events), 1000):
        r = c.post("/v1/events/batch", json={"events": events[lo : lo + 1000]})
        assert r.status_code == 202, r.text
        logged += r.json()["logged"]
    return logged


def finish(c: httpx.Client, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    seen_progress = set()
    while time.monotonic() < deadline:
        job = c.get(f"/admin/jobs/{job_id}", headers=AUTH).json()
        seen_progress.add(job["progress"])
        if job["state"] in ("succeeded", "rejected", "failed"):
            job["seen_progress"] = sorted(seen_progress)
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def stream_pos(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def run_worker(settings: Settings) -> subprocess.CompletedProcess:
    """``nextitem-server worker --burst``: works off the queue, then exits."""
    env = {**os.environ, **settings_env(settings)}
    cmd = [sys.executable, "-m", "app.cli", "worker", "--burst"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


@needs_shared_data
def test_retrain_over_redis_with_the_worker(tmp_path: Path, redis_url: str, redis_prefix: str):
    model_dir = tmp_path / "models"
    old = write_tiny_checkpoint(model_dir)  # a model that knows none of the shop's items
    s = Settings(
        model_dir=model_dir,
        redis_url=redis_url,
        key_prefix=redis_prefix,
        admin_token=TOKEN,
        model_poll_seconds=0.5,
    )
    client = redis.Redis.from_url(redis_url)
    with LiveServer(s) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        logged = ingest(c, shop_events())
        assert logged > 2000
        assert c.get("/v1/sessions/v5/recommendations").json()["fallback"] == "no_known_items"

        last_id = client.xrevrange(stream_key(redis_prefix), count=1)[0][0].decode()
        r = c.post("/admin/retrain", json=QUICK, headers=AUTH)
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        assert c.get(f"/admin/jobs/{job_id}", headers=AUTH).json()["state"] == "queued"
        done = run_worker(s)
        assert done.returncode == 0, done.stderr[-2000:]
        job = finish(c, job_id)
        assert job["state"] == "succeeded", job
        new = job["version"]
        assert job["activated"] and current_version(model_dir) == new
        assert job["consumed_up_to"] == last_id
        # what the job read moved from Redis's memory to the archive beside the checkpoints
        assert client.xlen(stream_key(redis_prefix)) == 0
        assert len(EventArchive(model_dir / "event-archive").read()) == logged
        assert job["metrics"]["active"]["version"] == old
        assert job["metrics"]["candidate"]["recall@20"] > 0.1  # a real model, not noise

        # every API process swaps (pub/sub or poll); sessions are rebuilt for the new model
        wait_for(lambda: srv.registry.active.version == new)
        recs = c.get("/v1/sessions/v5/recommendations").json()
        assert recs["model_version"] == new and recs["fallback"] is None
        assert len(recs["items"]) == 20
        view = c.get("/admin/models", headers=AUTH).json()
        assert view["current"] == view["serving"] == new
        assert view["versions"][0]["gate"]["passed"] is True

        # more clicks arrive; a retrain whose gate cannot pass leaves the model alone
        logged2 = ingest(c, shop_events(100, offset=800))
        r = c.post("/admin/retrain", json={**QUICK, "gate_ratio": 100.0}, headers=AUTH)
        assert run_worker(s).returncode == 0
        job2 = finish(c, r.json()["job_id"])
        assert job2["state"] == "rejected" and not job2["activated"]
        assert stream_pos(job2["consumed_up_to"]) > stream_pos(job["consumed_up_to"])  # new clicks
        assert len(EventArchive(model_dir / "event-archive").read()) == logged + logged2
        assert job2["metrics"]["active"]["version"] == new
        assert current_version(model_dir) == new
        time.sleep(1.0)
        assert srv.registry.active.version == new
        assert c.get("/v1/sessions/v5/recommendations").json()["model_version"] == new


@needs_shared_data
def test_retrain_embedded_runs_jobs_in_a_child_process(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    s = Settings(model_dir=model_dir, admin_token=TOKEN, model_poll_seconds=0.3)
    with LiveServer(s) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        ingest(c, shop_events(400))
        bad = c.post("/admin/retrain", json={**QUICK, "base_dataset": "no-such-data"}, headers=AUTH)
        busy = c.post("/admin/retrain", json=QUICK, headers=AUTH)  # one of a kind at a time
        assert busy.status_code == 409 and bad.json()["job_id"] in busy.json()["detail"]
        failed = finish(c, bad.json()["job_id"])
        assert failed["state"] == "failed" and "no-such-data" in failed["error"]
        good = c.post("/admin/retrain", json=QUICK, headers=AUTH)
        job = finish(c, good.json()["job_id"])
        assert job["state"] == "succeeded", job
        assert job["progress"] == 1.0 and len(job["seen_progress"]) >= 2
        assert job["consumed_up_to"] == str((model_dir / "event-log.jsonl").stat().st_size)
        wait_for(lambda: srv.registry.active.version == job["version"])
        recs = c.get("/v1/sessions/v5/recommendations").json()
        assert recs["model_version"] == job["version"] and recs["fallback"] is None
        listed = c.get("/admin/jobs", headers=AUTH).json()
        assert [j["job_id"] for j in listed] == [good.json()["job_id"], bad.json()["job_id"]]


def test_worker_without_redis_says_so(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NEXTITEM_REDIS_URL", raising=False)
    monkeypatch.setenv("NEXTITEM_MODEL_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "NEXTITEM_REDIS_URL" in result.output
