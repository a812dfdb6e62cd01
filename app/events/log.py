"""The durable, append-only log of every event: what the next training run learns from.

Redis path: the stream ``<prefix>:events``, written by the session store's
ingest script in the same round trip as the session's item list (so an event
is acknowledged only once it is in the log). Embedded path: a JSON-lines file,
appended and flushed before the acknowledgement.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LoggedEvent:
    session_id: str
    item_id: str
    ts: float
    event_type: str
    event_id: str | None = None


def stream_key(prefix: str) -> str:
    return f"{prefix}:events"


class PartialAppend(OSError):
    """An append failed and what it wrote could not be taken back: some of its events may be in."""


class FileEventLog:
    """JSON lines, one event per line, appended under a lock and written through to the OS.

    ``fsync=True`` also forces every append to disk (safe against power loss, slower).
    An append is all or nothing: when a write fails (a full disk), the file is
    cut back to where it was, so the caller can answer "nothing was recorded"
    and a resend is logged once. A log whose last line is torn (the process
    died in the middle of an append) gets its next event on a fresh line, so
    the torn part stays a line of its own, which the snapshot skips, and never
    spoils the event after it.
    """

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        # unbuffered: a failed write must leave no bytes behind in a buffer to go out later
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()
        self._torn = _ends_torn(path)

    def append(self, events: Iterable[LoggedEvent]) -> None:
        """Append whole lines; raises ``OSError`` with the file as before, or ``PartialAppend``."""
        data = "".join(json.dumps(asdict(e), separators=(",", ":")) + "\n" for e in events).encode()
        if not data:
            return
        with self._lock:
            if self._torn:
                data = b"\n" + data
            start = os.fstat(self._fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                self._take_back(start, exc)
                raise
            self._torn = False

    def _take_back(self, start: int, exc: OSError) -> None:
        try:
            os.ftruncate(self._fd, start)
        except OSError as undo:
            self._torn = True  # whatever stays, the next append starts on a fresh line
            raise PartialAppend(
                exc.errno, f"{exc.strerror}; the log could not be cut back ({undo.strerror})"
            ) from exc

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _ends_torn(path: Path) -> bool:
    """Whether the file has a last line without its newline."""
    with path.open("rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_entry(fields: dict[Any, Any]) -> LoggedEvent:
    """A stream entry's fields (as the ingest script writes them) as an event."""
    f = {_text(k): _text(v) for k, v in fields.items()}
    return LoggedEvent(
        session_id=f["session"],
        item_id=f["item"],
        ts=float(f["ts"]),
        event_type=f["type"],
        event_id=f.get("event_id"),
    )
