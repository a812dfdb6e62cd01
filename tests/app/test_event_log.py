"""The embedded event log under failure: a torn line, a failed write.

The file is what the next model learns from, so a crash in the middle of an
append or a full disk must neither break later retrains nor lose or double an
event a client resends.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from app.events.log import FileEventLog, LoggedEvent
from app.events.snapshot import file_snapshot


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
