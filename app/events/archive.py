"""The event log's long-term part: stream entries a retrain has read, moved to Parquet files.

The Redis stream is the log's short-term part: it would grow without end in
memory. When a retrain snapshots the log, the entries it read are appended to
the archive (one Parquet file per snapshot, named by its last stream id, next to
the checkpoints) and only then trimmed from the stream. A snapshot is therefore
the archive plus the stream after the archive's last id. The order of the two
steps keeps every event in exactly one readable place: a crash between them
leaves entries in both, and the stream part is read only after the archive's
last id, so nothing is read twice; the next snapshot trims them. Archive files
are on disk (the file and its folder entry fsynced) before the trim.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pandas as pd

from app.events.log import sync_folder

_NAME = re.compile(r"^events-(\d{13})-(\d{10})\.parquet$")


def parse_id(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


class EventArchive:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if _NAME.match(p.name))

    def last_id(self) -> str | None:
        """The stream id of the newest archived entry (None: nothing archived yet)."""
        files = self.files()
        if not files:
            return None
        ms, seq = _NAME.match(files[-1].name).groups()  # type: ignore[union-attr]
        return f"{int(ms)}-{int(seq)}"

    def read(self) -> pd.DataFrame | None:
        files = self.files()
        if not files:
            return None
        return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)

    def append(self, events: pd.DataFrame, last_id: str) -> Path:
        """Write ``events`` (stream entries up to ``last_id``) as one new file, atomically.

        On disk when it returns: the file's bytes, then its name in the folder, are
        fsynced, since the caller then trims these entries from the stream, and a
        power loss must not take the only copy of them.
        """
        ms, seq = parse_id(last_id)
        new_folder = not self.directory.is_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        if new_folder:
            sync_folder(self.directory.parent)
        final = self.directory / f"events-{ms:013d}-{seq:010d}.parquet"
        fd, tmp = tempfile.mkstemp(prefix=".events.", dir=self.directory)
        os.close(fd)
        try:
            events.to_parquet(tmp, index=False)
            _sync_file(Path(tmp))
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        sync_folder(self.directory)
        return final


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
