"""A consistent snapshot of the event log for a retrain job: every event up to a fixed position.

The position is taken first (the stream's last id, or the log file's size), and
only events up to it are read, so events that arrive while the job trains are
neither half-read nor lost: the next job's snapshot includes them. The job
records the position (``consumed_up_to``).

With Redis, the snapshot also moves what it read from the stream to the
archive (``app.events.archive``) and trims the stream, under a lock so that two
workers never archive the same entries.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import redis

from app.events.archive import EventArchive, parse_id
from app.events.log import LoggedEvent, decode_entry, stream_key

COLUMNS = ["session_id", "item_id", "ts", "event_type", "event_id"]
_DTYPES = {"session_id": str, "item_id": str, "ts": float, "event_type": str, "event_id": str}
# How every line of the file log starts (``FileEventLog`` writes the fields in this order).
_LINE_START = b'{"session_id":'

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventSnapshot:
    events: pd.DataFrame  # session_id, item_id, ts (float seconds), event_type, event_id (or None)
    position: str | None  # last stream id / byte offset read; None = the log was empty

    def __len__(self) -> int:
        return len(self.events)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c == "ts" else str) for c in COLUMNS})


def _decode(value: bytes) -> str:
    return value.decode()


def read_stream(
    client: redis.Redis, key: str, after: str | None = None, end: str = "+", chunk: int = 50_000
) -> pd.DataFrame:
    """Stream entries after ``after`` (exclusive; None = from the start) up to ``end``."""
    events: list[LoggedEvent] = []
    start = "-" if after is None else f"({after}"
    while True:
        rows = client.xrange(key, min=start, max=end, count=chunk)
        events += [decode_entry(fields) for _, fields in rows]
        if len(rows) < chunk or _decode(rows[-1][0]) == end:
            break
        start = "(" + _decode(rows[-1][0])
    return pd.DataFrame([asdict(e) for e in events], columns=COLUMNS)


def _after(entry_id: str) -> str:
    ms, seq = parse_id(entry_id)
    return f"{ms}-{seq + 1}"


def redis_snapshot(
    client: redis.Redis, prefix: str, archive: EventArchive | None = None, chunk: int = 50_000
) -> EventSnapshot:
    """The archive plus the stream up to its last id now; the read entries are archived.

    Without an archive the stream is only read (and never trimmed).
    """
    key = stream_key(prefix)
    with client.lock(f"{prefix}:archive-lock", timeout=3600, blocking_timeout=3600):
        last = client.xrevrange(key, count=1)
        archived = archive.read() if archive is not None else None
        after = archive.last_id() if archive is not None else None
        if not last or (after is not None and parse_id(_decode(last[0][0])) <= parse_id(after)):
            events = archived if archived is not None else _empty()
            return EventSnapshot(events[COLUMNS], after)
        end = _decode(last[0][0])
        fresh = read_stream(client, key, after, end, chunk)
        if archive is not None:
            archive.append(fresh, end)  # first the archive, then the trim
            client.xtrim(key, minid=_after(end))
    parts = [p for p in (archived, fresh) if p is not None and len(p)]
    events = pd.concat(parts, ignore_index=True) if parts else _empty()
    return EventSnapshot(events[COLUMNS], end)


def _is_event(line: bytes) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and all(c in value for c in COLUMNS[:4])


def _whole_events(lines: list[bytes]) -> tuple[list[bytes], int]:
    """The lines that are events, and how many lines were not.

    A process that died in the middle of an append leaves a torn line. Appends
    start on a fresh line after one (``FileEventLog``), but a log written before
    that rule may hold a torn line with the next, acknowledged event glued to
    its end: that event is kept, from the last place a line starts.
    """
    kept, skipped = [], 0
    for line in lines:
        if not line.strip():
            continue
        if _is_event(line):
            kept.append(line)
            continue
        skipped += 1
        tail = line[line.rfind(_LINE_START) :] if line.rfind(_LINE_START) > 0 else b""
        if tail and _is_event(tail):
            kept.append(tail)
    return kept, skipped


def _read_lines(data: bytes, path: Path) -> pd.DataFrame:
    try:
        return pd.read_json(io.BytesIO(data), lines=True, dtype=_DTYPES)
    except ValueError:
        pass  # a torn line: read the whole events one by one (rare, so the fast read first)
    kept, skipped = _whole_events(data.split(b"\n"))
    log.warning("event log %s: skipped %d torn or unreadable line(s)", path, skipped)
    if not kept:
        return _empty()
    return pd.read_json(io.BytesIO(b"\n".join(kept) + b"\n"), lines=True, dtype=_DTYPES)


def file_snapshot(path: Path) -> EventSnapshot:
    """The complete lines of the JSON-lines log, up to its size at the time of the call.

    A torn line (a crash in the middle of an append) is skipped, wherever it is.
    """
    if not path.exists():
        return EventSnapshot(_empty(), None)
    with path.open("rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1  # a line being appended right now is left for the next job
    if end == 0:
        return EventSnapshot(_empty(), None)
    frame = _read_lines(data[:end], path)
    if "event_id" not in frame:
        frame["event_id"] = None
    return EventSnapshot(frame[COLUMNS], str(end))
