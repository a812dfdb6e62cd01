"""Event frames for retraining: the log plus a base dataset, and the newest-sessions hold-out.

Everything is keyed by external ids as text (the form the service logs), so
the event log and a base dataset of the same shop join on item id, and a
hold-out can be mapped onto any model's catalog.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.data import load_dataset
from training.data.preprocess import PreprocessConfig, filter_events
from training.data.registry import REGISTRY

COLUMNS = ["session_id", "item_id", "ts"]


def dataset_events(name: str, before: float) -> pd.DataFrame:
    """All sessions of a registered session dataset as an event frame.

    Sessions without times are placed one second apart, in their file order,
    ending just ``before`` the given time (the start of the event log), so the
    log stays the newest data. Only a registered name is read, never ``FORMAT:PATH``:
    a retrain's config comes from the service, whose callers must not choose a file.
    """
    if name not in REGISTRY:
        raise ValueError(
            f"base_dataset {name!r} is not a registered dataset (known: {', '.join(REGISTRY)})"
        )
    ds = load_dataset(name)
    if ds.kind != "session":
        raise ValueError(f"{name} is {ds.kind} data; a retrain needs session data")
    frames = []
    for part in ("train", "test"):
        sess = ds.parts.get(part)
        if sess is None or sess.n_events == 0:
            continue
        row = np.repeat(np.arange(sess.n_sessions), sess.lengths)
        ts = sess.times if sess.times is not None else before - (sess.n_sessions - row)
        frames.append(
            pd.DataFrame(
                {
                    "session_id": np.char.add(f"{name}:{part}:", row.astype(str)),
                    "item_id": ds.items.ids[sess.items].astype(str),
                    "ts": np.asarray(ts, np.float64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def clean(events: pd.DataFrame, min_item_support: int) -> pd.DataFrame:
    """The GRU4Rec filters (sessions of 2+ events, item support) on an event frame."""
    if events.empty:
        return events[COLUMNS]
    cfg = PreprocessConfig(min_item_support=min_item_support, min_session_length=2)
    keep = filter_events(
        events["session_id"].to_numpy(), events["item_id"].to_numpy(), events["ts"].to_numpy(), cfg
    )
    return events.loc[keep, COLUMNS].reset_index(drop=True)


def newest_sessions(events: pd.DataFrame, fraction: float) -> np.ndarray:
    """Mask of the events of the newest ``fraction`` of sessions, by their last event's time.

    Sessions whose last events share a time (a batch posted without timestamps
    gets one "now") are ordered by where their last event stands in the log, so
    exactly ``round(fraction x sessions)`` sessions are held out.
    """
    if events.empty:
        return np.zeros(0, bool)
    codes, _ = pd.factorize(events["session_id"])
    n = codes.max() + 1
    last = np.full(n, -np.inf)
    np.maximum.at(last, codes, events["ts"].to_numpy())
    position = np.full(n, -1)
    np.maximum.at(position, codes, np.arange(len(codes)))
    n_held = max(1, round(n * fraction))
    newest = np.lexsort((position, last))[n - n_held :]
    held = np.zeros(n, bool)
    held[newest] = True
    return held[codes]
