"""A consistent snapshot of the event log for a retrain job: every event up to a fixed position.

The position is taken first (the stream's last id, or the log file's size), and
only events up to it are read, so events that arrive while the job trains are
neither half-read nor lost: the next job's snapshot includes them. The job
records the position (``consumed_up_to``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import redis

from app.event_log import stream_key

COLUMNS = ["session_id", "item_id", "ts", "event_type"]


@dataclass(frozen=True)
class EventSnapshot:
    events: pd.DataFrame  # session_id (str), item_id (str), ts (float seconds), event_type (str)
    position: str | None  # last stream id / byte offset read; None = the log was empty

    def __len__(self) -> int:
        return len(self.events)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=float if c == "ts" else str) for c in COLUMNS})


def _decode(value: bytes) -> str:
    return value.decode()


def redis_snapshot(client: redis.Redis, prefix: str, chunk: int = 50_000) -> EventSnapshot:
    """Entries of ``<prefix>:events`` up to its last id at the time of the call."""
    key = stream_key(prefix)
    last = client.xrevrange(key, count=1)
    if not last:
        return EventSnapshot(_empty(), None)
    end = _decode(last[0][0])
    columns: dict[str, list] = {c: [] for c in COLUMNS}
    start = "-"
    while True:
        rows = client.xrange(key, min=start, max=end, count=chunk)
        for _, fields in rows:
            columns["session_id"].append(_decode(fields[b"session"]))
            columns["item_id"].append(_decode(fields[b"item"]))
            columns["ts"].append(float(fields[b"ts"]))
            columns["event_type"].append(_decode(fields[b"type"]))
        if len(rows) < chunk or _decode(rows[-1][0]) == end:
            break
        start = "(" + _decode(rows[-1][0])
    return EventSnapshot(pd.DataFrame(columns, columns=COLUMNS), end)


def file_snapshot(path: Path) -> EventSnapshot:
    """The complete lines of the JSON-lines log, up to its size at the time of the call."""
    if not path.exists():
        return EventSnapshot(_empty(), None)
    with path.open("rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1  # a line being appended right now is left for the next job
    if end == 0:
        return EventSnapshot(_empty(), None)
    frame = pd.read_json(
        io.BytesIO(data[:end]),
        lines=True,
        dtype={"session_id": str, "item_id": str, "ts": float, "event_type": str},
    )
    return EventSnapshot(frame[COLUMNS], str(end))
