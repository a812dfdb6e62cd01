"""The durable, append-only log of every event: what the next training run learns from.

Redis path: the stream ``<prefix>:events``, written by the session store's
ingest script in the same round trip as the session's item list (so an event
is acknowledged only once it is in the log). Embedded path: a JSON-lines file,
appended and flushed before the acknowledgement, and on disk (fsynced) before
it (``NEXTITEM_DURABILITY=always``) or within about a second after it
(``everysec``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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

    ``fsync=True`` also forces every append to disk before it returns (safe against
    power loss, slower: the ``always`` level). ``sync_every=S`` instead has a thread
    force what was appended to disk every ``S`` seconds (the ``everysec`` level: a
    power loss takes at most the last ``S`` seconds or so). With neither, an append
    reaches the OS (safe against a crash of the process), and the disk when the OS
    writes it back. A new file's folder entry is forced to disk with either.
    An append is all or nothing: when a write fails (a full disk), the file is
    cut back to where it was, so the caller can answer "nothing was recorded"
    and a resend is logged once. A log whose last line is torn (the process
    died in the middle of an append) gets its next event on a fresh line, so
    the torn part stays a line of its own, which the snapshot skips, and never
    spoils the event after it.
    """

    def __init__(self, path: Path, fsync: bool = False, sync_every: float | None = None) -> None:
        self.path = path
        self.fsync = fsync
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        # unbuffered: a failed write must leave no bytes behind in a buffer to go out later
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if new and (fsync or sync_every):
            sync_folder(path.parent)  # else a power loss could forget the file itself
        self._lock = threading.Lock()
        self._torn = _ends_torn(path)
        self._dirty = False  # appended since the last fsync (``sync_every``)
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if sync_every and not fsync:
            self._syncer = threading.Thread(
                target=self._sync_loop, args=(sync_every,), name="nextitem-log-sync", daemon=True
            )
            self._syncer.start()

    def _sync_loop(self, interval: float) -> None:
        """Force the appends of the last interval to disk, off the acknowledgement's path."""
        while not self._stop.wait(interval):
            self._sync()

    def _sync(self) -> None:
        with self._lock:
            if not self._dirty or self._fd < 0:
                return
            self._dirty = False
            fd = os.dup(self._fd)  # its own descriptor: appends need not wait for the disk
        try:
            os.fsync(fd)
        except OSError as exc:  # the next interval tries again
            self._dirty = True
            log.error("event log %s: fsync failed: %s", self.path, exc)
        finally:
            os.close(fd)

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
            self._dirty = True

    def _take_back(self, start: int, exc: OSError) -> None:
        try:
            os.ftruncate(self._fd, start)
        except OSError as undo:
            self._torn = True  # whatever stays, the next append starts on a fresh line
            raise PartialAppend(
                exc.errno, f"{exc.strerror}; the log could not be cut back ({undo.strerror})"
            ) from exc

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join(timeout=10)
            self._sync()  # what the last interval appended
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def sync_folder(folder: Path) -> None:
    """Force a folder's entries (a new or renamed file in it) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
