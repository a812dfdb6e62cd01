"""Retraining parts: job records, log snapshots, the hold-out, the as-served metrics, the gate."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
import torch

from app.event_log import FileEventLog, LoggedEvent, stream_key
from app.event_snapshot import file_snapshot, redis_snapshot
from app.jobs import (
    FileJobStore,
    JobRecord,
    RedisJobStore,
    RetrainRequest,
    new_job,
    reconcile,
    settings_env,
)
from app.settings import Settings
from training.retrain.holdout import clean, newest_sessions
from training.retrain.pipeline import _gate
from training.retrain.served_eval import count_targets, served_metrics

# ---- job records ------------------------------------------------------------------------------


def _exercise_store(store) -> None:
    first = new_job(RetrainRequest(params={"n_epochs": 1}))
    store.create(first)
    time.sleep(0.01)
    second = new_job(RetrainRequest())
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


def test_file_job_store(tmp_path: Path) -> None:
    _exercise_store(FileJobStore(tmp_path / "jobs"))
    assert FileJobStore(tmp_path / "jobs").get("../etc") is None  # ids never become paths


def test_redis_job_store(redis_url: str, redis_prefix: str) -> None:
    _exercise_store(RedisJobStore(redis.Redis.from_url(redis_url), redis_prefix))


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
    from app.event_archive import EventArchive

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


# ---- hold-out and cleaning --------------------------------------------------------------------


def _frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["session_id", "item_id", "ts"])


def test_newest_sessions_are_held_out_by_their_last_event() -> None:
    # last events: a at 10, b at 30, c at 20, d at 40 -> newest half = b and d
    ev = _frame(
        [
            ("a", "1", 1),
            ("b", "1", 2),
            ("a", "2", 10),
            ("c", "3", 20),
            ("b", "2", 30),
            ("d", "1", 40),
        ]
    )
    held = newest_sessions(ev, 0.5)
    assert ev.loc[held, "session_id"].tolist() == ["b", "b", "d"]
    assert newest_sessions(ev, 0.01).sum() == 1  # at least one session


def test_sessions_ending_at_the_same_time_are_ordered_by_the_log() -> None:
    # one batch without timestamps: every click at t = 5; the log order decides
    ev = _frame([("a", "1", 5), ("b", "1", 5), ("c", "2", 5), ("a", "2", 5), ("d", "3", 5)])
    held = newest_sessions(ev, 0.5)  # 4 sessions -> 2; last clicks: b 1, c 2, a 3, d 4
    assert ev.loc[held, "session_id"].tolist() == ["a", "a", "d"]


def test_clean_applies_session_length_and_item_support() -> None:
    ev = _frame([("a", "1", 1), ("a", "2", 2), ("b", "1", 3), ("b", "3", 4), ("c", "1", 5)])
    # support: 1 -> 3 (c is a single click, dropped first: 1 -> 2), 2 -> 1, 3 -> 1
    assert clean(ev, 1)["session_id"].tolist() == ["a", "a", "b", "b"]
    assert clean(ev, 2).empty  # only item 1 stays, every session falls to one click


# ---- as-served metrics and the gate -----------------------------------------------------------


class _NextRow(torch.nn.Module):
    """A model that always predicts row (last clicked row + 1): scores are exact to check."""

    n_interests = 1

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def item_vectors(self) -> torch.Tensor:
        return torch.eye(self.n)

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        nxt = (prefix[:, -1] + 1) % self.n
        return torch.nn.functional.one_hot(nxt, self.n).float()[:, None, :]


def test_served_metrics_count_unknown_targets_as_misses() -> None:
    model = _NextRow(4)
    ids = np.array(["a", "b", "c", "d"])
    # s1: a b c -> both targets predicted (b after a, c after b)
    # s2: a z b -> z is unknown (a miss); b is predicted from a (z is skipped, as served)
    # s3: d a   -> a after d: row 3 + 1 = 0 -> predicted
    # s4: c a   -> predicts d, misses
    holdout = _frame(
        [("s1", "a", 1), ("s1", "b", 2), ("s1", "c", 3), ("s2", "a", 4), ("s2", "z", 5),
         ("s2", "b", 6), ("s3", "d", 7), ("s3", "a", 8), ("s4", "c", 9), ("s4", "a", 10)]
    )  # fmt: skip
    assert count_targets(holdout) == 6
    m = served_metrics(model, ids, holdout, ks=(1,))
    assert m["recall@1"] == pytest.approx(4 / 6)
    assert m["mrr@1"] == pytest.approx(4 / 6)
    # with every item ranked, the only misses are the targets outside the catalog
    assert served_metrics(model, ids, holdout, ks=(4,))["recall@4"] == pytest.approx(5 / 6)


def test_gate_rule() -> None:
    active = {"recall@20": 0.4}
    assert _gate({"recall@20": 0.38}, active, 0.95)["passed"]  # 0.38 >= 0.95 x 0.4
    assert not _gate({"recall@20": 0.379}, active, 0.95)["passed"]
    assert _gate({"recall@20": 0.01}, None, 0.95)["passed"]  # nothing to compare with
    assert not _gate({"recall@20": 0.0}, None, 0.95)["passed"]  # but it must score at all
    assert not _gate({"recall@20": 0.0}, {"recall@20": 0.0}, 0.95)["passed"]


# ---- the pipeline, on the generated demo shop -------------------------------------------------


def demo_log(n_sessions: int = 1500) -> pd.DataFrame:
    from training.cli.serve_cmd import demo_dataset

    ds = demo_dataset()
    sess = ds.parts["train"]
    sess = sess.select(np.arange(sess.n_sessions) < n_sessions)
    row = np.repeat(np.arange(sess.n_sessions), sess.lengths)
    return pd.DataFrame(
        {
            "session_id": row.astype(str),
            "item_id": ds.items.ids[sess.items].astype(str),
            "ts": 1e9 + row + np.arange(len(row)) * 1e-4,
        }
    )


@pytest.mark.parametrize(
    ("kind", "params"), [("gru4rec", {"n_epochs": 1}), ("comirec-sa", {"max_iter": 60})]
)
def test_retrain_writes_a_servable_checkpoint_and_gates_it(
    tmp_path, kind, params, one_torch_thread
):
    from app.model_registry import load_serving_model
    from training.checkpoint import read_manifest
    from training.retrain import RetrainConfig, retrain

    log = demo_log()
    first = retrain(log, tmp_path, RetrainConfig(params={"n_epochs": 1}, min_item_support=1))
    assert first.passed and first.metrics["active"] is None
    cfg = RetrainConfig(kind=kind, params=params, min_item_support=1, gate_ratio=0.5)
    out = retrain(log, tmp_path, cfg, active_version=first.version)
    manifest = read_manifest(tmp_path, out.version)
    assert manifest["kind"] == kind and manifest["gate"] == out.metrics["gate"]
    active = out.metrics["active"]["recall@20"]
    assert active == pytest.approx(first.metrics["candidate"]["recall@20"])  # same hold-out
    assert out.passed == (out.metrics["candidate"]["recall@20"] >= 0.5 * active)
    served = load_serving_model(tmp_path, out.version, Settings(model_dir=tmp_path))
    assert served.item_ids[0] == str(served.item_ids[0])  # ids as the service logs them
    strict_cfg = RetrainConfig(kind=kind, params=params, min_item_support=1, gate_ratio=100.0)
    strict = retrain(log, tmp_path, strict_cfg, active_version=first.version)
    assert not strict.passed


def test_retrain_refuses_a_log_too_small_to_train(tmp_path: Path) -> None:
    from training.retrain import RetrainConfig, retrain
    from training.retrain.pipeline import NothingToTrain

    log = _frame([("a", "1", 1), ("a", "2", 2)])
    with pytest.raises(NothingToTrain, match="log more events"):
        retrain(log, tmp_path, RetrainConfig(min_item_support=5))
