"""The one in-memory form every loader returns.

Events are stored CSR-style: one contiguous int32 array of item indices and an
int64 offsets array with a row per session (or per user, for rating and
user-sequence data). A session's events are ``items[offsets[s]:offsets[s + 1]]``.
This is at once a sparse matrix (``indptr=offsets, indices=items``), the input of
session-parallel mini-batches, and cheap to slice with index arithmetic, so no
consumer ever needs a Python list per session.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Sessions:
    """Events grouped by session (or user), in time order within each row."""

    items: np.ndarray  # int32 [n_events], item row index into the ItemTable
    offsets: np.ndarray  # int64 [n_sessions + 1], offsets[0] == 0
    times: np.ndarray | None = None  # float64 [n_events], unix seconds
    values: np.ndarray | None = None  # float32 [n_events], e.g. ratings
    keys: np.ndarray | None = None  # [n_sessions] external session / user ids

    def __post_init__(self) -> None:
        if self.items.dtype != np.int32:
            raise TypeError(f"items must be int32, got {self.items.dtype}")
        if self.offsets.dtype != np.int64:
            raise TypeError(f"offsets must be int64, got {self.offsets.dtype}")
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.items):
            raise ValueError("offsets must start at 0 and end at len(items)")
        for name in ("times", "values"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != len(self.items):
                raise ValueError(f"{name} has {len(arr)} entries for {len(self.items)} events")
        if self.keys is not None and len(self.keys) != self.n_sessions:
            raise ValueError("keys must have one entry per session")
        # Loaded datasets are cached and shared: make accidental in-place edits
        # (e.g. scipy sorting CSR indices) fail loudly instead of corrupting them.
        for arr in (self.items, self.offsets, self.times, self.values, self.keys):
            if arr is not None:
                arr.flags.writeable = False

    @property
    def n_sessions(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_events(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def session_of_event(self) -> np.ndarray:
        """Row index of every event (int64 [n_events])."""
        return np.repeat(np.arange(self.n_sessions, dtype=np.int64), self.lengths)

    def session(self, s: int) -> np.ndarray:
        return self.items[self.offsets[s] : self.offsets[s + 1]]

    def select(self, rows: np.ndarray) -> Sessions:
        """A new Sessions holding the given rows (a boolean mask or indices), in that order."""
        rows = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Gather event indices of the selected rows without a Python loop.
        starts = np.repeat(self.offsets[rows], lengths)
        within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        idx = starts + within
        return Sessions(
            items=self.items[idx],
            offsets=offsets,
            times=None if self.times is None else self.times[idx],
            values=None if self.values is None else self.values[idx],
            keys=None if self.keys is None else self.keys[rows],
        )

    def filter_events(self, keep: np.ndarray) -> Sessions:
        """Drop events where ``keep`` is False; rows keep their place (they may become empty)."""
        kept_before = np.r_[0, np.cumsum(keep, dtype=np.int64)]
        counts = kept_before[self.offsets[1:]] - kept_before[self.offsets[:-1]]
        offsets = np.zeros(self.n_sessions + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Sessions(
            items=self.items[keep],
            offsets=offsets,
            times=None if self.times is None else self.times[keep],
            values=None if self.values is None else self.values[keep],
            keys=self.keys,
        )

    def remap_items(self, mapping: np.ndarray) -> Sessions:
        """Apply an old-index -> new-index map; events mapped to -1 are dropped."""
        new = mapping[self.items]
        out = replace(self, items=np.where(new < 0, 0, new).astype(np.int32))
        return out.filter_events(new >= 0)

    @staticmethod
    def from_groups(
        group: np.ndarray,
        items: np.ndarray,
        times: np.ndarray | None = None,
        values: np.ndarray | None = None,
        order: np.ndarray | None = None,
    ) -> Sessions:
        """Build from flat event columns grouped by ``group`` (any sortable key).

        Rows are ordered by ``order`` (one value per event; the minimum per group is
        used, e.g. the time of the first event) and then by group key; events keep a
        stable time order within a row (file order breaks ties).
        """
        n = len(items)
        codes, uniques = pd.factorize(np.asarray(group))
        sort_time = times if times is not None else np.zeros(n, dtype=np.float64)
        idx = np.lexsort((np.arange(n), sort_time, codes))
        g = codes[idx]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if n else np.zeros(0, np.int64)
        lengths = np.diff(np.r_[starts, n]).astype(np.int64)
        keys = np.asarray(uniques)[g[starts]]
        if order is not None and n:
            first = np.minimum.reduceat(order[idx], starts)
            row_order = np.lexsort((g[starts], first))
        else:
            row_order = np.arange(len(starts))
        sess = Sessions(
            items=items[idx].astype(np.int32),
            offsets=np.r_[0, np.cumsum(lengths)].astype(np.int64),
            times=None if times is None else times[idx].astype(np.float64),
            values=None if values is None else values[idx].astype(np.float32),
            keys=keys,
        )
        return sess.select(row_order)


@dataclass(frozen=True)
class ItemTable:
    """Row index -> external id, with an optional category per item."""

    ids: np.ndarray  # [n_items] external ids (int64 or str objects)
    categories: np.ndarray | None = None  # int32 [n_items], -1 = unknown
    category_names: np.ndarray | None = None  # [n_categories] external category ids

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, external: np.ndarray) -> np.ndarray:
        """External ids -> row indices (-1 for unknown ids), vectorised."""
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        pos = np.searchsorted(sorted_ids, external)
        pos = np.clip(pos, 0, max(len(sorted_ids) - 1, 0))
        found = len(sorted_ids) > 0
        hit = sorted_ids[pos] == external if found else np.zeros(len(external), bool)
        return np.where(hit, order[pos] if found else -1, -1).astype(np.int64)


DatasetKind = Literal["session", "sequence", "rating"]


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: the item table and its named parts.

    ``kind`` tells which protocol fits: ``session`` (next-item over anonymous
    sessions, parts ``train``/``test`` and optionally ``train_tr``/``valid``),
    ``sequence`` (one row per user, for the multi-interest protocol; part ``all``)
    or ``rating`` (one row per user in every part, so each part is a user x item
    CSR matrix; folds ``u1.base``/``u1.test``...).
    ``targets`` maps a test part to the global event indices that are prediction
    targets when they are not simply every non-first event of every session
    (e.g. RetailRocket's published rows start at prefix length 2).
    """

    name: str
    kind: DatasetKind
    items: ItemTable
    parts: dict[str, Sessions]
    users: np.ndarray | None = None  # rating data: row index -> external user id
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    folds: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # file paths read, for provenance
    sha256: str = ""  # combined digest of the source files
    notes: str = ""

    @property
    def n_items(self) -> int:
        return len(self.items)

    def part(self, name: str) -> Sessions:
        try:
            return self.parts[name]
        except KeyError:
            known = ", ".join(self.parts)
            raise KeyError(f"dataset {self.name!r} has no part {name!r} (parts: {known})") from None

    def fold(self, fold: str) -> tuple[Sessions, Sessions]:
        """(train, test) parts of a rating fold such as ``u1``."""
        if fold not in self.folds:
            raise KeyError(f"dataset {self.name!r} has no fold {fold!r} (folds: {self.folds})")
        return self.parts[f"{fold}.base"], self.parts[f"{fold}.test"]
