"""The embedded event log under failure: a torn line, a failed write.

The file is what the next model learns from, so a crash in the middle of an
append or a full disk must neither break later retrains nor lose or double an
event a client resends.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import httpx
import pandas as pd
import pytest

from app.events.log import FileEventLog, LoggedEvent
from app.events.snapshot import file_snapshot
from app.settings import Settings
from tests.app.support import LiveServer, item_id, write_tiny_checkpoint


def ev(session: str, item: str, event_id: str | None = None) -> LoggedEvent:
    return LoggedEvent(session, item, 1.5, "view", event_id)


def test_a_torn_line_in_the_middle_leaves_the_whole_events_readable(tmp_path: Path) -> None:
    """A crash mid-append leaves a partial line; the next start appends after it."""
    path = tmp_path / "log.jsonl"
    log = FileEventLog(path)
    log.append([ev("s1", "1")])
    log.close()
    with path.open("a") as f:
        f.write('{"session_id":"s2","item')  # the process died here
    log = FileEventLog(path)  # the next start
    log.append([ev("s3", "3")])
    log.close()
    # the next event starts on a line of its own: the torn part stays alone on its line
    assert path.read_text().splitlines()[1:] == [
        '{"session_id":"s2","item',
        '{"session_id":"s3","item_id":"3","ts":1.5,"event_type":"view","event_id":null}',
    ]
    snap = file_snapshot(path)
    assert snap.events["session_id"].tolist() == ["s1", "s3"]
    assert snap.events["item_id"].tolist() == ["1", "3"]
    assert snap.position == str(path.stat().st_size)


def test_the_snapshot_skips_a_torn_line_and_keeps_the_event_glued_to_it(tmp_path: Path) -> None:
    """Appends that did not start on a fresh line glued the next event to a torn one:
    that event was acknowledged, so it is read; the torn part alone is skipped."""
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"session_id":"s1","item_id":"1","ts":1.5,"event_type":"view","event_id":null}\n'
        '{"session_id":"s2","item{"session_id":"s2","item_id":"2","ts":1.5,"event_type":"view"}\n'
        '{"session_id":"s3","item_id":"3","ts":2.5,"event_type":"cart","event_id":"e3"}\n'
        '{"session_id":"s4","ite\n'
        '{"session_id":"s5","item_id":"5","ts":3.5,"event_type":"view","event_id":null}\n'
    )
    events = file_snapshot(path).events
    assert [None if pd.isna(e) else e for e in events.pop("event_id")] == [None, None, "e3", None]
    assert events.to_dict("list") == {
        "session_id": ["s1", "s2", "s3", "s5"],
        "item_id": ["1", "2", "3", "5"],
        "ts": [1.5, 1.5, 2.5, 3.5],
        "event_type": ["view", "view", "cart", "view"],
    }


def test_a_failed_append_leaves_the_log_as_it_was(tmp_path: Path, monkeypatch) -> None:
    """The disk fills up half-way through a batch: none of it stays, so a resend is whole."""
    path = tmp_path / "log.jsonl"
    log = FileEventLog(path)
    log.append([ev("s1", "1")])
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def half_then_full(fd: int, data) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("app.events.log.os.write", half_then_full)
    with pytest.raises(OSError):
        log.append([ev("s2", "2"), ev("s3", "3")])
    assert calls, "the append went through os.write"
    assert path.read_bytes() == before
    monkeypatch.undo()
    log.append([ev("s2", "2"), ev("s3", "3")])
    log.close()
    assert file_snapshot(path).events["session_id"].tolist() == ["s1", "s2", "s3"]


@pytest.mark.parametrize("form", ["single", "batch"])
def test_a_failed_log_write_is_a_503_and_the_resent_event_is_logged_once(
    tmp_path: Path, monkeypatch, form: str
) -> None:
    """A full disk: 503 (not 500), and the event id is not taken, so the resend is logged."""
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    real_append = FileEventLog.append
    calls = []

    def full_disk_once(self: FileEventLog, events) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_append(self, events)

    monkeypatch.setattr(FileEventLog, "append", full_disk_once)
    click = {"session_id": "s", "item_id": item_id(4), "event_id": "e1"}

    def post(http: httpx.Client) -> httpx.Response:
        if form == "single":
            return http.post("/v1/events", json=click)
        return http.post("/v1/events/batch", json={"events": [click]})

    with LiveServer(Settings(model_dir=model_dir)) as srv, httpx.Client(base_url=srv.url) as http:
        first = post(http)
        assert first.status_code == 503, first.text
        assert first.headers["Retry-After"] == "1"
        assert "nothing was recorded" in first.json()["detail"]
        assert http.get("/v1/sessions/s").status_code == 404
        again = post(http)
        assert again.status_code == 202, again.text
        status = again.json()["status"] if form == "single" else again.json()["logged"]
        assert status in ("logged", 1)
        assert post(http).status_code == 202  # now a duplicate
        assert http.get("/v1/sessions/s").json()["n_events"] == 1
    events = file_snapshot(model_dir / "event-log.jsonl").events
    assert events["event_id"].tolist() == ["e1"]
