"""One retrain of a model kind at a time (409 while one is unfinished), and a submission
that timed out creates and queues its job once, whether the service retries it or the
admin resends it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
import redis

from app.jobs.queue import RqJobQueue, queue_name
from app.jobs.store import RedisJobStore, RetrainRunning
from app.jobs.submit import SubmitUnknown, submit
from app.schemas import RetrainRequest
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def wait_for(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_second_retrain_of_a_kind_waits_for_the_first_redis(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """No worker runs here: a job stays queued until the test finishes it as a worker would."""
    write_tiny_checkpoint(tmp_path)
    s = Settings(
        model_dir=tmp_path, redis_url=redis_url, key_prefix=redis_prefix, admin_token=TOKEN
    )
    client = redis.Redis.from_url(redis_url)
    store = RedisJobStore(client, redis_prefix)
    with LiveServer(s) as srv, httpx.Client(base_url=srv.url, headers=AUTH) as c:
        first = c.post("/admin/retrain", json={"model": "gru4rec"})
        assert first.status_code == 202
        a = first.json()["job_id"]
        again = c.post("/admin/retrain", json={"model": "gru4rec", "params": {"n_epochs": 1}})
        assert again.status_code == 409 and a in again.json()["detail"]
        assert c.post("/admin/retrain", json={"model": "comirec-sa"}).status_code == 202
        queued = client.lrange(f"rq:queue:{queue_name(redis_prefix)}", 0, -1)
        assert queued.count(a.encode()) == 1 and len(queued) == 2

        store.update(a, state="rejected", finished=time.time())  # as the worker ends it
        b = c.post("/admin/retrain", json={"model": "gru4rec"})
        assert b.status_code == 202
        # a job whose record is gone (expired) holds its kind no more
        client.delete(f"{redis_prefix}:job:{b.json()['job_id']}")
        assert c.post("/admin/retrain", json={"model": "gru4rec"}).status_code == 202
        assert len(c.get("/admin/jobs").json()) == 3  # a, comirec-sa's, the last one


def test_a_second_retrain_of_a_kind_waits_for_the_first_embedded(tmp_path: Path) -> None:
    """Embedded jobs really run (in a child process): this one fails at once, nothing logged."""
    write_tiny_checkpoint(tmp_path)
    s = Settings(model_dir=tmp_path, admin_token=TOKEN)
    with LiveServer(s) as srv, httpx.Client(base_url=srv.url, headers=AUTH, timeout=30) as c:
        first = c.post("/admin/retrain", json={})
        assert first.status_code == 202
        a = first.json()["job_id"]
        again = c.post("/admin/retrain", json={})
        assert again.status_code == 409 and a in again.json()["detail"]
        wait_for(lambda: c.get(f"/admin/jobs/{a}").json()["state"] == "failed")
        assert c.post("/admin/retrain", json={}).status_code == 202


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
def test_a_submission_that_timed_out_makes_one_job_queued_once(tmp_path: Path) -> None:
    """Redis stalls past the client's timeout: the service's retry writes nothing twice, and
    an admin's resend of a submission that failed every try is refused and queues it once."""
    from tests.app.support import OwnRedis

    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder, "--enable-debug-command", "yes").start()
    try:
        s = Settings(model_dir=tmp_path, redis_url=server.url, key_prefix="p")
        client = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        store, queue = RedisJobStore(client, "p"), RqJobQueue(s, client)
        queued = f"rq:queue:{queue_name('p')}"

        # the first try times out, the retry is answered once Redis wakes up
        client.ping()
        stall = server.stall(0.8)
        record = submit(store, queue, RetrainRequest(model="gru4rec"))
        stall.join()
        assert server.client.lrange(queued, 0, -1) == [record.job_id.encode()]
        assert server.client.zcard("p:jobs") == 1
        assert store.get(record.job_id) == record

        # every try times out: the job Redis creates after the stall is the only one
        store.update(record.job_id, state="succeeded", finished=time.time())
        server.client.delete(queued)
        stall = server.stall(2.0)
        with pytest.raises(SubmitUnknown, match="may or may not have been created"):
            submit(store, queue, RetrainRequest(model="gru4rec"))
        stall.join()
        # the timed-out tries run once Redis reads them after its stall (a moment later)
        wait_for(lambda: server.client.zcard("p:jobs") == 2, timeout=5)
        time.sleep(0.2)
        ids = [i.decode() for i in server.client.zrange("p:jobs", 0, -1)]
        assert len(ids) == 2 and record.job_id in ids
        lost = next(i for i in ids if i != record.job_id)
        assert store.get(lost).state == "queued" and server.client.llen(queued) == 0
        for _ in range(2):  # the admin resends: refused, and the lost job is queued, once
            with pytest.raises(RetrainRunning) as refused:
                submit(store, queue, RetrainRequest(model="gru4rec"))
            assert refused.value.job_id == lost
        assert server.client.lrange(queued, 0, -1) == [lost.encode()]
        assert server.client.zcard("p:jobs") == 2
    finally:
        server.kill()
