"""Retrain jobs on the service side: job records, the queue's word on lost jobs, log snapshots."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from app.events.log import FileEventLog, LoggedEvent, stream_key
from app.events.snapshot import file_snapshot, redis_snapshot
from app.jobs.queue import reconcile, settings_env
from app.jobs.store import FileJobStore, RedisJobStore, RetrainRunning, new_job
from app.schemas import JobRecord, RetrainRequest
from app.settings import Settings
from models.registry import retrainable_kinds

# ---- job records ------------------------------------------------------------------------------


def _exercise_store(store) -> None:
    first = new_job(RetrainRequest(params={"n_epochs": 1}))
    store.create(first)
    time.sleep(0.01)
    with pytest.raises(RetrainRunning, match=first.job_id):  # one job of a kind at a time
        store.create(new_job(RetrainRequest()))
    store.create(first)  # the same job again (a retry after a timeout) changes nothing
    second = new_job(RetrainRequest(model="comirec-sa"))
    store.create(second)
    assert store.get(first.job_id) == first
    assert store.get("0" * 32) is None
    updated = store.update(first.job_id, state="running", progress=0.5, stage="train")
    assert (updated.state, updated.progress, updated.stage) == ("running", 0.5, "train")
    assert store.get(first.job_id) == updated
    assert store.get(first.job_id).request.params == {"n_epochs": 1}
    assert [r.job_id for r in store.recent(10)] == [second.job_id, first.job_id]
    assert [r.job_id for r in store.recent(1)] == [second.job_id]
    with pytest.raises(KeyError):
        store.update("0" * 32, state="failed")
    store.update(first.job_id, state="failed")  # a final state frees the kind
    store.create(new_job(RetrainRequest()))
    assert len(store.recent(10)) == 3


def test_file_job_store(tmp_path: Path) -> None:
    _exercise_store(FileJobStore(tmp_path / "jobs"))
    assert FileJobStore(tmp_path / "jobs").get("../etc") is None  # ids never become paths


def test_redis_job_store(redis_url: str, redis_prefix: str) -> None:
    _exercise_store(RedisJobStore(redis.Redis.from_url(redis_url), redis_prefix))


def _exercise_trim(store) -> None:
    """Five finished jobs and two unfinished ones, the unfinished oldest: the store keeps
    the two newest finished jobs and both unfinished ones, however old."""
    running = new_job(RetrainRequest(model="comirec-sa"))
    store.create(running)
    store.update(running.job_id, state="running")
    time.sleep(0.01)
    queued = new_job(RetrainRequest(model="mind"))
    store.create(queued)
    finished = []
    for state in ("succeeded", "rejected", "failed", "succeeded", "failed"):
        time.sleep(0.01)
        job = new_job(RetrainRequest())
        store.create(job)
        store.update(job.job_id, state="running")
        store.update(job.job_id, state=state)
        finished.append(job.job_id)
    kept = [r.job_id for r in store.recent(100)]
    assert kept == [finished[4], finished[3], queued.job_id, running.job_id]
    assert store.get(finished[0]) is None
    store.update(running.job_id, state="succeeded")  # now the oldest finished job: it goes
    assert [r.job_id for r in store.recent(100)] == [finished[4], finished[3], queued.job_id]


def test_file_job_store_keeps_the_newest_finished_jobs(tmp_path: Path) -> None:
    _exercise_trim(FileJobStore(tmp_path / "jobs", max_finished=2))
    assert len(list((tmp_path / "jobs").glob("*.json"))) == 3


def test_redis_job_store_keeps_the_newest_finished_jobs(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    _exercise_trim(RedisJobStore(client, redis_prefix, max_finished=2))
    assert client.zcard(f"{redis_prefix}:jobs") == 3
    assert len(list(client.scan_iter(match=f"{redis_prefix}:job:*"))) == 3


class _DeadQueue:
    def failure(self, job_id: str) -> str | None:
        return "the worker reported the job failed: killed"


def test_reconcile_marks_a_job_the_queue_lost_as_failed() -> None:
    running = new_job(RetrainRequest()).model_copy(update={"state": "running"})
    out = reconcile(running, _DeadQueue())
    assert (out.state, out.error) == ("failed", "the worker reported the job failed: killed")
    done = running.model_copy(update={"state": "succeeded"})
    assert reconcile(done, _DeadQueue()) is done  # a finished job's own word stands


def test_settings_env_recreates_the_settings(tmp_path: Path, monkeypatch) -> None:
    s = Settings(model_dir=tmp_path, admin_token="t0k", gate_ratio=0.5, key_prefix="p:x")
    for name, value in settings_env(s).items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again.model_dump() == s.model_dump()
    assert again.admin_token.get_secret_value() == "t0k"


def test_retrain_request_refuses_unknown_fields_and_models() -> None:
    with pytest.raises(ValueError):
        RetrainRequest.model_validate({"model": "gru4rec", "epochs": 3})
    with pytest.raises(ValueError):
        RetrainRequest.model_validate({"model": "svd"})
    assert JobRecord.model_fields["state"].annotation is not None
    accepted = RetrainRequest.model_json_schema()["properties"]["model"]["enum"]
    assert tuple(accepted) == retrainable_kinds()  # derived from the one table of kinds
    assert "cf-knn" not in accepted  # exported by its own commands, not retrained


# ---- event-log snapshots ----------------------------------------------------------------------


def test_file_snapshot_reads_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = FileEventLog(path)
    log.append([LoggedEvent("s1", "0042", 1.5, "view"), LoggedEvent("s2", "7", 2.0, "cart", "e")])
    log.close()
    size = path.stat().st_size
    with path.open("a") as f:
        f.write('{"session_id":"s3","item')  # an append in progress
    snap = file_snapshot(path)
    assert snap.position == str(size)
    assert snap.events.drop(columns="event_id").to_dict("list") == {
        "session_id": ["s1", "s2"],
        "item_id": ["0042", "7"],  # ids stay text: leading zeros kept
        "ts": [1.5, 2.0],
        "event_type": ["view", "cart"],
    }
    assert snap.events["event_id"].tolist()[1] == "e"
    assert len(file_snapshot(tmp_path / "none.jsonl")) == 0


def test_redis_snapshot_reads_up_to_the_last_id_in_chunks(redis_url: str, redis_prefix: str):
    client = redis.Redis.from_url(redis_url)
    key = stream_key(redis_prefix)
    assert redis_snapshot(client, redis_prefix).position is None
    ids = [
        client.xadd(key, {"session": f"s{i % 3}", "item": str(i), "ts": i, "type": "view"})
        for i in range(10)
    ]
    snap = redis_snapshot(client, redis_prefix, chunk=3)
    assert snap.position == ids[-1].decode()
    assert snap.events["item_id"].tolist() == [str(i) for i in range(10)]
    assert snap.events["session_id"].tolist() == [f"s{i % 3}" for i in range(10)]


def test_redis_snapshot_archives_what_it_read_and_trims_the_stream(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    from app.events.archive import EventArchive

    client = redis.Redis.from_url(redis_url)
    key = stream_key(redis_prefix)
    archive = EventArchive(tmp_path / "archive")

    def click(i: int) -> bytes:
        return client.xadd(key, {"session": "s", "item": str(i), "ts": i, "type": "view"})

    first = [click(i) for i in range(6)]
    snap = redis_snapshot(client, redis_prefix, archive, chunk=4)
    assert snap.events["item_id"].tolist() == [str(i) for i in range(6)]
    assert snap.position == first[-1].decode() == archive.last_id()
    assert client.xlen(key) == 0  # moved to the archive
    again = redis_snapshot(client, redis_prefix, archive)
    assert again.events["item_id"].tolist() == [str(i) for i in range(6)]
    assert again.position == snap.position and len(archive.files()) == 1

    later = [click(i) for i in range(6, 9)]
    # a crash after the archive write but before the trim: entries in both places
    archive.append(redis_snapshot(client, redis_prefix).events, later[-1].decode())
    assert client.xlen(key) == 3
    click(9)
    snap = redis_snapshot(client, redis_prefix, archive)
    assert snap.events["item_id"].tolist() == [str(i) for i in range(10)]  # each event once
    assert client.xlen(key) == 0 and len(archive.files()) == 3
