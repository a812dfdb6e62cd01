"""Write a session dataset's parts as GRU4Rec TSV files (SessionId, ItemId, Time).

Why: comparing against another implementation (the official GRU4Rec code, a
session-kNN library, ...) is only fair on the very events nextitem trains and
tests on, after its own preprocessing. The folder written here is the format
those tools read, and ``gru4rec:FOLDER`` reads it back into the same sessions.

- SessionId is the session's row in its part, ItemId the external item id.
- Time is the event's unix time when the part has times; otherwise the event's
  position in the part, so that time-sorting keeps the stored session order
  (diginetica's files have no timestamps).
- Test parts are written whole. A dataset whose test targets are not simply
  every non-first event (``Dataset.targets``) cannot say so in this format:
  ``export_gru4rec`` names such parts, so that the caller can warn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from training.data.errors import DataError
from training.data.formats.events import GRU4REC_COLUMNS, GRU4REC_SPLIT_FILES
from training.data.sessions import Dataset


def part_events(ds: Dataset, part: str) -> pd.DataFrame:
    """One row per event of ``part``: SessionId, ItemId, Time, in stored order."""
    s = ds.part(part)
    if s.times is not None:
        times = np.asarray(s.times, dtype=np.float64)
        if np.all(times == np.round(times)):
            times = times.astype(np.int64)
    else:
        times = np.arange(s.n_events, dtype=np.int64)
    cols = GRU4REC_COLUMNS
    return pd.DataFrame(
        {cols.session: s.session_of_event(), cols.item: ds.items.ids[s.items], cols.time: times}
    )


def export_gru4rec(ds: Dataset, folder: Path) -> tuple[list[Path], list[str]]:
    """Write ``folder/<name>_<split>.tsv`` per part; (files written, parts with custom targets)."""
    if ds.kind != "session":
        raise DataError(f"{ds.name} is {ds.kind} data; only session data has this format")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for part, ending in GRU4REC_SPLIT_FILES.items():
        if part not in ds.parts:
            continue
        path = folder / f"{ds.name}_{ending}.tsv"
        part_events(ds, part).to_csv(path, sep="\t", index=False)
        written.append(path)
    return written, [p for p in ds.targets if p in ds.parts]
