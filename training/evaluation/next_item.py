"""Session next-item protocol: predict every target event from its session prefix.

A task is the test sessions plus the global indices of the events to predict
(by default every event after the first of each session). Prefix batches are
built by index arithmetic, scored against all items by the model, and ranked
by comparison. Models that walk whole sessions (GRU4Rec) can use the task's
``targets`` directly; models that look at prefixes implement ``PrefixScorer``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from training.data.sessions import Dataset, Sessions
from training.evaluation.ranking import ByRepeat, RankMetrics, TieMode, target_ranks


@dataclass(frozen=True)
class PrefixBatch:
    """Prefixes left-padded with -1: the last clicked item is always column -1."""

    items: torch.Tensor  # int64 [B, L]
    lengths: torch.Tensor  # int64 [B]
    targets: torch.Tensor  # int64 [B]


class PrefixScorer(Protocol):
    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Scores for every item, float [B, n_items], from left-padded prefixes [B, L]."""
        ...


@dataclass(frozen=True)
class NextItemTask:
    sessions: Sessions
    targets: np.ndarray  # int64 global event indices to predict

    @staticmethod
    def from_sessions(sessions: Sessions) -> NextItemTask:
        """Every event but the first of each session is a target."""
        is_first = np.zeros(sessions.n_events, dtype=bool)
        is_first[sessions.offsets[:-1][sessions.lengths > 0]] = True
        return NextItemTask(sessions, np.flatnonzero(~is_first).astype(np.int64))

    @staticmethod
    def from_dataset(ds: Dataset, part: str = "test") -> NextItemTask:
        sessions = ds.part(part)
        if part in ds.targets:
            return NextItemTask(sessions, ds.targets[part])
        return NextItemTask.from_sessions(sessions)

    def __len__(self) -> int:
        return len(self.targets)

    def repeats(self) -> np.ndarray:
        """Per target: was its item clicked earlier in the same session?

        Why: re-clicks are a different prediction problem from new items (a
        model that can copy from the session gets them cheaply), and on
        diginetica they are a fifth of the targets but half of GRU4Rec's
        MRR@20. Metrics split this way show where a figure comes from.
        """
        s = self.sessions
        session = s.session_of_event()
        order = np.lexsort((np.arange(s.n_events), s.items, session))
        by_session, by_item = session[order], s.items[order]
        again = (by_session[1:] == by_session[:-1]) & (by_item[1:] == by_item[:-1])
        seen = np.zeros(s.n_events, dtype=bool)
        seen[order[1:]] = again
        return seen[self.targets]

    def prefix_starts(self) -> np.ndarray:
        session = np.searchsorted(self.sessions.offsets, self.targets, side="right") - 1
        return self.sessions.offsets[session]

    def batches(self, batch_size: int) -> Iterator[PrefixBatch]:
        starts = self.prefix_starts()
        items = torch.from_numpy(self.sessions.items.astype(np.int64))
        for lo in range(0, len(self.targets), batch_size):
            t = torch.from_numpy(self.targets[lo : lo + batch_size])
            s = torch.from_numpy(starts[lo : lo + batch_size])
            lengths = t - s
            width = int(lengths.max())
            # Column j holds event t - width + j; columns before the session start are padding.
            idx = t.view(-1, 1) - width + torch.arange(width).view(1, -1)
            valid = idx >= s.view(-1, 1)
            prefix = torch.where(valid, items[idx.clamp(min=0)], torch.full_like(idx, -1))
            yield PrefixBatch(items=prefix, lengths=lengths, targets=items[t])


def evaluate_next_item(
    scorer: PrefixScorer,
    task: NextItemTask,
    ks: tuple[int, ...] = (20,),
    ties: TieMode = "standard",
    batch_size: int = 64,  # small batches keep the score rows in cache
    progress: bool = True,
    by_repeat: bool = False,
) -> tuple[dict[str, float], float]:
    """Recall@k and MRR@k over all targets; returns (metrics, seconds).

    ``by_repeat`` adds the same metrics over the targets clicked earlier in
    their session (``<metric>_repeat``) and over the rest (``<metric>_new``),
    and their share (``repeat_share``), as GRU4Rec's session walk reports them.
    """
    metrics = RankMetrics(ks)
    split = ByRepeat(task.repeats(), ks) if by_repeat else None
    start = time.perf_counter()
    with (
        torch.inference_mode(),
        tqdm(
            total=len(task), desc="evaluate", unit="pred", disable=not progress, leave=False
        ) as bar,
    ):
        done = 0
        for batch in task.batches(batch_size):
            scores = scorer.score(batch.items, batch.lengths)
            ranks = target_ranks(scores, batch.targets, ties)
            metrics.add(ranks)
            if split is not None:
                split.add(ranks, slice(done, done + len(ranks)))
            done += len(ranks)
            bar.update(len(batch.targets))
    result = metrics.result()
    if split is not None:
        result.update(split.result())
    return result, time.perf_counter() - start
