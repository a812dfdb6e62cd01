"""User sequences for multi-interest training, prepared as the official ComiRec code does.

Items and users with fewer than ``min_count`` events are dropped (one pass:
items first, then users), and items are re-indexed by descending count (ties by
the dataset's row), which the log-uniform negative sampler relies on: row 0 is
the most popular item. The item's category is the dataset's category code,
for MovieLens the first listed genre.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.data.errors import DataError
from training.data.sessions import Dataset, Sessions
from training.evaluation.multi_interest import UserSplit, split_from_file, split_users


@dataclass(frozen=True)
class UserSequences:
    sequences: Sessions  # one row per kept user, items in model rows (by descending count)
    item_ids: np.ndarray  # model row -> external item id
    dataset_rows: np.ndarray  # model row -> dataset item row
    categories: np.ndarray | None  # model row -> category code (-1 = none)
    popularity: np.ndarray  # model row -> event count
    split: UserSplit
    summary: dict[str, Any]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def sequence_part(ds: Dataset) -> str:
    """The part holding time-ordered user sequences: ml-1m's ``timestamped``, else ``all``.

    A session dataset's ``train`` part serves too, each session read as one
    sequence (how a shop's click log trains the multi-interest models).
    """
    for name in ("timestamped", "all"):
        if name in ds.parts and ds.kind in ("rating", "sequence"):
            return name
    if ds.kind == "session" and "train" in ds.parts:
        return "train"
    raise DataError(f"{ds.name} has no user sequences (kind {ds.kind}, parts {list(ds.parts)})")


def prepare(
    ds: Dataset, split_file: Path | None = None, seed: int = 0, min_count: int = 5
) -> UserSequences:
    part = sequence_part(ds)
    raw = ds.part(part)
    item_count = np.bincount(raw.items, minlength=ds.n_items)
    seqs = raw.filter_events(item_count[raw.items] >= min_count)
    seqs = seqs.select(seqs.lengths >= min_count)
    count = np.bincount(seqs.items, minlength=ds.n_items)
    kept = np.flatnonzero(count > 0)
    order = kept[np.lexsort((kept, -count[kept]))]
    mapping = np.full(ds.n_items, -1, np.int64)
    mapping[order] = np.arange(len(order))
    seqs = seqs.remap_items(mapping)
    keys = seqs.keys if seqs.keys is not None else np.arange(seqs.n_sessions)
    split = (
        split_from_file(split_file, np.asarray(keys))
        if split_file is not None
        else split_users(seqs.n_sessions, seed)
    )
    cats = ds.items.categories
    return UserSequences(
        sequences=seqs,
        item_ids=ds.items.ids[order],
        dataset_rows=order,
        categories=None if cats is None else np.asarray(cats)[order].astype(np.int32),
        popularity=count[order].astype(np.float64),
        split=split,
        summary={
            "part": part,
            "min_count": min_count,
            "events": int(seqs.n_events),
            "users": int(seqs.n_sessions),
            "items": len(order),
            "split": str(split_file) if split_file is not None else f"seed {seed}",
            "split_sizes": [len(split.train), len(split.valid), len(split.test)],
        },
    )


def left_padded_tails(seqs: Sessions, ends: np.ndarray, rows: np.ndarray, width: int) -> np.ndarray:
    """Per row: the up-to-``width`` items before position ``ends`` (exclusive), left-padded
    with -1 (int64 [len(rows), width]). Vectorised gather, no loop over users."""
    start = seqs.offsets[rows] + ends  # one past the last item taken
    idx = start[:, None] - width + np.arange(width)[None, :]
    first = seqs.offsets[rows][:, None]
    valid = idx >= first
    return np.where(valid, seqs.items[np.where(valid, idx, 0)], -1).astype(np.int64)


class TrainingSampler:
    """Official ComiRec sampling: ``batch`` distinct random training users, for each a cut k
    uniform in [4, len - 1]; the up-to-L items before k are the input, item k the target."""

    def __init__(self, seqs: Sessions, users: np.ndarray, max_len: int, seed: int) -> None:
        self.seqs, self.users, self.max_len = seqs, users, max_len
        self.lengths = seqs.lengths[users]
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        pick = self.rng.choice(len(self.users), size=min(size, len(self.users)), replace=False)
        rows, lengths = self.users[pick], self.lengths[pick]
        low = np.minimum(4, lengths - 1)
        k = self.rng.integers(low, lengths)  # high exclusive: k <= len - 1
        inputs = left_padded_tails(self.seqs, k, rows, self.max_len)
        targets = self.seqs.items[self.seqs.offsets[rows] + k].astype(np.int64)
        return inputs, targets
