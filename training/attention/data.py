"""The data of the attention models: training sequences, and what is ranked to evaluate them.

Two protocols, one form. ``leave_one_out`` is the S3-Rec / ICLRec form of the
user-sequence sets (the Amazon 5-core files): per user the last item is the
test target, the one before it the validation target, the rest trains; users
with fewer than three items are left out (the 5-core files have none). The
validation history is the training sequence, the test history that plus the
validation item. ``next_item`` is the session form (e.g. diginetica): the
training sessions train, a seeded tenth of them is held out for validation,
and every published test prefix is ranked against its next click.

Either way an evaluation is a set of *histories* (CSR rows, oldest first) and
one target per history, so one evaluator serves both. Item rows are the
dataset's rows: nothing is filtered or re-indexed, so a checkpoint's items are
the dataset's items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from training.data.errors import DataError
from training.data.sessions import Dataset, Sessions
from training.evaluation.next_item import NextItemTask

Protocol = Literal["leave-one-out", "next-item"]


@dataclass(frozen=True)
class Histories:
    """Histories (one CSR row each, oldest first) and the item each should predict."""

    history: Sessions
    targets: np.ndarray  # int64 [n_rows]

    def __len__(self) -> int:
        return len(self.targets)

    def take(self, rows: np.ndarray) -> Histories:
        return Histories(self.history.select(rows), self.targets[rows])


@dataclass(frozen=True)
class SequenceData:
    protocol: Protocol
    train: Sessions  # the sequences training reads, one row each (rows of < 2 items are unused)
    valid: Histories
    test: Histories
    n_items: int
    item_ids: np.ndarray  # model row -> external item id
    popularity: np.ndarray  # model row -> training events
    summary: dict[str, Any]
    #: the protocol's ranking: without the history's own items (leave-one-out, as the papers
    #: rank), or over all items (sessions, where a re-click is a fair target)
    remove_seen: bool


def _drop_tail(seqs: Sessions, n: int) -> Sessions:
    """Every row without its last ``n`` items."""
    keep = np.ones(seqs.n_events, dtype=bool)
    ends = seqs.offsets[1:]
    for back in range(1, n + 1):  # n is 1 or 2: a loop over the tail, not over events
        keep[ends - back] = False
    return seqs.filter_events(keep)


def leave_one_out(ds: Dataset, part: str = "all") -> SequenceData:
    seqs = ds.part(part)
    seqs = seqs.select(seqs.lengths >= 3)
    if seqs.n_sessions == 0:
        raise DataError(f"{ds.name}: no user has the three items leave-one-out needs")
    last = seqs.items[seqs.offsets[1:] - 1].astype(np.int64)
    second = seqs.items[seqs.offsets[1:] - 2].astype(np.int64)
    train = _drop_tail(seqs, 2)
    popularity = np.bincount(train.items, minlength=ds.n_items)
    return SequenceData(
        protocol="leave-one-out",
        train=train,
        valid=Histories(train, second),
        test=Histories(_drop_tail(seqs, 1), last),
        n_items=ds.n_items,
        item_ids=ds.items.ids,
        popularity=popularity,
        summary={
            "protocol": "leave-one-out",
            "users": seqs.n_sessions,
            "items": ds.n_items,
            "train_events": train.n_events,
        },
        remove_seen=True,
    )


def task_histories(task: NextItemTask) -> Histories:
    """A next-item task's prefixes (from the session start up to each target) as histories."""
    starts = task.prefix_starts()
    lengths = task.targets - starts
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    idx = np.repeat(starts, lengths) + (
        np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    )
    items = task.sessions.items
    return Histories(
        Sessions(items=items[idx], offsets=offsets), items[task.targets].astype(np.int64)
    )


def next_item(
    ds: Dataset, seed: int = 0, valid_fraction: float = 0.1, valid_rows: int = 20_000
) -> SequenceData:
    if "train" not in ds.parts or "test" not in ds.parts:
        raise DataError(f"{ds.name} has no train and test sessions for the next-item protocol")
    test = task_histories(NextItemTask.from_dataset(ds, "test"))
    return from_sessions(ds.part("train"), ds.items.ids, test, seed, valid_fraction, valid_rows)


def from_sessions(
    sessions: Sessions,
    item_ids: np.ndarray,
    test: Histories | None = None,
    seed: int = 0,
    valid_fraction: float = 0.1,
    valid_rows: int = 20_000,
) -> SequenceData:
    """Sessions of 2+ clicks, a seeded ``valid_fraction`` of them held out for validation.

    Without ``test`` (a retrain, which judges the model on its own hold-out) the
    test histories are the validation ones.
    """
    sessions = sessions.select(sessions.lengths >= 2)
    rng = np.random.default_rng(seed)
    held = rng.random(sessions.n_sessions) < valid_fraction
    if sessions.n_sessions >= 2 and not held.any():
        held[rng.integers(sessions.n_sessions)] = True
    train, held_out = sessions.select(~held), sessions.select(held)
    if train.n_sessions == 0 or held_out.n_sessions == 0:
        raise DataError("too few sessions of two or more clicks to train and validate on")
    valid = task_histories(NextItemTask.from_sessions(held_out))
    if len(valid) > valid_rows:  # validation ranks the catalog per row: a fixed sample bounds it
        valid = valid.take(np.sort(rng.choice(len(valid), valid_rows, replace=False)))
    test = valid if test is None else test
    n_items = len(item_ids)
    return SequenceData(
        protocol="next-item",
        train=train,
        valid=valid,
        test=test,
        n_items=n_items,
        item_ids=item_ids,
        popularity=np.bincount(train.items, minlength=n_items),
        summary={
            "protocol": "next-item",
            "train_sessions": train.n_sessions,
            "valid_sessions": held_out.n_sessions,
            "valid_rows": len(valid),
            "test_rows": len(test),
            "items": n_items,
            "seed": seed,
        },
        remove_seen=False,
    )


def prepare(ds: Dataset, seed: int = 0) -> SequenceData:
    """The protocol the dataset's kind calls for: leave-one-out for user sequences,
    next-item for sessions."""
    if ds.kind == "sequence":
        return leave_one_out(ds)
    if ds.kind == "session":
        return next_item(ds, seed)
    raise DataError(f"{ds.name} is {ds.kind} data; the attention models train on sequences")


def windows(seqs: Sessions, rows: np.ndarray, length: int) -> np.ndarray:
    """The last ``length`` items of each of ``rows``, left-padded with -1 (int64 [B, length])."""
    ends = seqs.offsets[rows + 1]
    starts = seqs.offsets[rows]
    idx = ends[:, None] - length + np.arange(length)[None, :]
    inside = idx >= starts[:, None]
    return np.where(inside, seqs.items[np.clip(idx, 0, None)], -1).astype(np.int64)


class TrainingBatches:
    """An epoch of training windows: every sequence of 2+ items once, in a seeded random order.

    A row of L + 1 items is split into the input (its first L) and the targets
    (its last L, the next item at every position), as the SASRec reference code
    does; sequences longer than L + 1 keep their last L + 1. Each batch is as
    wide as its longest sequence (the network cuts all-padding columns anyway).

    With ``group`` > 0 (ours, for speed), the shuffled sequences are taken
    ``group`` batches at a time, sorted by length within that pool, cut into
    batches, and all batches are shuffled: a batch then holds sequences of
    similar length, so it carries little padding, while which sequences meet
    in a batch stays random.
    """

    def __init__(self, seqs: Sessions, max_len: int, seed: int, group: int = 0) -> None:
        self.seqs = seqs
        self.max_len = max_len
        self.group = group
        self.rows = np.flatnonzero(seqs.lengths >= 2)
        if len(self.rows) == 0:
            raise DataError("no training sequence has two items")
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.rows)

    def epoch(self, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        order = self.rng.permutation(self.rows)
        if self.group > 0:
            pool = batch_size * self.group
            size = np.minimum(self.seqs.lengths[order], self.max_len + 1)
            chunk = np.arange(len(order)) // pool
            order = order[np.lexsort((size, chunk))]  # by length within each pool
        cuts = list(range(0, len(order), batch_size))
        if self.group > 0:
            self.rng.shuffle(cuts)
        out = []
        for lo in cuts:
            rows = order[lo : lo + batch_size]
            width = int(min(self.seqs.lengths[rows].max(), self.max_len + 1))
            w = windows(self.seqs, rows, width)
            out.append((w[:, :-1], w[:, 1:]))
        return out
