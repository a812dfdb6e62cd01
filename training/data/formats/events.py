"""Raw event logs (CSV, TSV or Parquet) and GRU4Rec TSV folders.

A raw log has one row per click: a session key, an item key and a time (unix
seconds or milliseconds, or date strings). It gets the GRU4Rec preprocessing of
``training.data.preprocess``. A GRU4Rec folder already holds the official
split files (``<name>_train_full`` and ``<name>_test``, optionally
``<name>_train_tr`` and ``<name>_train_valid``; the name may be left out) and is
read as is, apart from dropping test events on items unseen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.errors import DatasetNotFound, MalformedFile
from training.data.formats.tables import read_table, require_columns
from training.data.preprocess import (
    PreprocessConfig,
    build_item_table,
    holdout_by_time,
    split_log,
    to_sessions,
)
from training.data.sessions import Dataset
from training.data.textio import sha256_of


@dataclass(frozen=True)
class Columns:
    session: str = "session_id"
    item: str = "item_id"
    time: str = "timestamp"
    category: str | None = None


GRU4REC_COLUMNS = Columns(session="SessionId", item="ItemId", time="Time")

# The official split files of a GRU4Rec folder: nextitem part -> the file name's
# ending (``<name>_<ending>.tsv``). ``load_gru4rec`` looks for these names and
# ``training.data.export`` writes them.
GRU4REC_SPLIT_FILES = {
    "train": "train_full",
    "test": "test",
    "train_tr": "train_tr",
    "valid": "train_valid",
}


def datetimes_to_seconds(values: pd.Series) -> np.ndarray:
    """Timezone-aware datetimes -> unix seconds, whatever pandas' internal resolution."""
    return ((values - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64)


def to_unix_seconds(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Numbers (seconds, or milliseconds when too large to be seconds) or date strings."""
    if pd.api.types.is_numeric_dtype(values):
        t = values.to_numpy(dtype=np.float64)
    else:
        as_num = pd.to_numeric(values, errors="coerce")
        if as_num.notna().any():  # a numeric column with a bad entry: name it
            bad = as_num.isna().to_numpy()
            if bad.any():
                row = int(bad.argmax())
                raise MalformedFile(
                    path, row + 2, f"column {column!r}: not a time: {values.iloc[row]!r}"
                )
            t = as_num.to_numpy(dtype=np.float64)
        else:
            parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
            if parsed.isna().any():
                row = int(parsed.isna().to_numpy().argmax())
                raise MalformedFile(
                    path, row + 2, f"column {column!r}: not an ISO 8601 time: {values.iloc[row]!r}"
                )
            return datetimes_to_seconds(parsed)
    if len(t) and np.nanmax(t) > 1e11:
        t = t / 1000.0
    return t


def read_event_table(path: Path, cols: Columns, sep: str | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetNotFound(path.name, path)
    wanted = [cols.session, cols.item, cols.time] + ([cols.category] if cols.category else [])
    if path.suffix == ".parquet" or path.name.endswith((".parquet.snappy", ".pq")):
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types
            raise MalformedFile(path, None, f"not a readable parquet file ({exc})") from None
        require_columns(df, path, wanted)
        return df[wanted]
    if sep is None:
        sep = "\t" if ".tsv" in path.name or ".txt" in path.name else ","
    df = read_table(path, sep=sep)
    require_columns(df, path, wanted)
    return df[wanted]


def _columns_as_arrays(df: pd.DataFrame, path: Path, cols: Columns) -> tuple[np.ndarray, ...]:
    session = df[cols.session].to_numpy()
    item = df[cols.item].to_numpy()
    time = to_unix_seconds(df[cols.time], path, cols.time)
    if pd.isna(df[cols.session]).any() or pd.isna(df[cols.item]).any():
        col = cols.session if pd.isna(df[cols.session]).any() else cols.item
        row = int(pd.isna(df[col]).to_numpy().argmax())
        raise MalformedFile(path, row + 2, f"column {col!r} is empty")
    return session, item, time


def events_dataset(
    name: str,
    session: np.ndarray,
    item: np.ndarray,
    time: np.ndarray,
    cfg: PreprocessConfig,
    sources: list[Path],
    categories: pd.Series | None = None,
    notes: str = "",
) -> Dataset:
    """Preprocess a raw log; the training part is split again by time for validation."""
    table, train, test = split_log(session, item, time, cfg, categories)
    parts = {"train": train, "test": test}
    train_tr, valid = holdout_by_time(train, cfg.test_days, cfg.min_session_length)
    if valid.n_sessions and train_tr.n_sessions:
        parts.update(train_tr=train_tr, valid=valid)
    return Dataset(
        name=name,
        kind="session",
        items=table,
        parts=parts,
        sources=tuple(str(p) for p in sources),
        sha256=sha256_of(sources),
        notes=notes,
    )


def load_events(
    path: Path,
    cols: Columns = Columns(),
    cfg: PreprocessConfig = PreprocessConfig(),
    name: str | None = None,
    sep: str | None = None,
) -> Dataset:
    df = read_event_table(path, cols, sep)
    session, item, time = _columns_as_arrays(df, path, cols)
    categories = None
    if cols.category:
        categories = df.drop_duplicates(cols.item).set_index(cols.item)[cols.category]
    return events_dataset(name or path.stem, session, item, time, cfg, [path], categories)


def _split_file(folder: Path, ending: str) -> Path | None:
    """The first ``*_<ending>*`` file (or, without a name, ``<ending>*``) in ``folder``.

    The underscore keeps ``test`` from matching inside other words (``latest``).
    """
    hits = sorted(folder.glob(f"*_{ending}*")) or sorted(folder.glob(f"{ending}*"))
    return hits[0] if hits else None


def load_gru4rec(
    path: Path,
    cols: Columns = GRU4REC_COLUMNS,
    cfg: PreprocessConfig = PreprocessConfig(),
    name: str | None = None,
) -> Dataset:
    """A GRU4Rec TSV: a folder of official split files, or one raw log file."""
    if path.is_file():
        return load_events(path, cols, cfg, name, sep="\t")
    if not path.is_dir():
        raise DatasetNotFound(name or path.name, path)
    roles = {part: _split_file(path, ending) for part, ending in GRU4REC_SPLIT_FILES.items()}
    if roles["train"] is None or roles["test"] is None:
        raise DatasetNotFound(
            name or path.name, path, "expected <name>_train_full and <name>_test files"
        )
    columns = {}
    for role, file in roles.items():
        if file is not None:
            df = read_event_table(file, cols, sep="\t")
            columns[role] = _columns_as_arrays(df, file, cols)
    session, item, time = columns["train"]
    table = build_item_table(item, time)
    parts = {"train": to_sessions(table, session, item, time, 1)}
    parts["test"] = to_sessions(table, *columns["test"], cfg.min_session_length)
    if "train_tr" in columns and "valid" in columns:
        tr = to_sessions(table, *columns["train_tr"], 1)
        valid = to_sessions(table, *columns["valid"], cfg.min_session_length)
        seen = np.zeros(len(table), dtype=bool)
        seen[tr.items] = True
        valid = valid.filter_events(seen[valid.items])
        parts.update(train_tr=tr, valid=valid.select(valid.lengths >= cfg.min_session_length))
    sources = [p for p in roles.values() if p is not None]
    return Dataset(
        name=name or path.name,
        kind="session",
        items=table,
        parts=parts,
        sources=tuple(str(p) for p in sources),
        sha256=sha256_of(sources),
    )
