"""Next-item protocol: prefix batches by index arithmetic, and the evaluation loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.data.sessions import Sessions
from training.evaluation.next_item import NextItemTask, evaluate_next_item


def sessions(rows: list[list[int]]) -> Sessions:
    offsets = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    return Sessions(items=np.array([i for r in rows for i in r], np.int32), offsets=offsets)


def test_targets_are_every_non_first_event() -> None:
    task = NextItemTask.from_sessions(sessions([[5, 6, 7], [8, 9]]))
    assert task.targets.tolist() == [1, 2, 4]


def test_prefix_batches_are_left_padded() -> None:
    task = NextItemTask.from_sessions(sessions([[5, 6, 7], [8, 9]]))
    (batch,) = list(task.batches(10))
    assert batch.items.tolist() == [[-1, 5], [5, 6], [-1, 8]]
    assert batch.lengths.tolist() == [1, 2, 1]
    assert batch.targets.tolist() == [6, 7, 9]


def test_repeats_mark_targets_clicked_earlier_in_their_session() -> None:
    # Session 0: 5 6 5 5 7 6 -> targets 6 (new), 5 (seen), 5 (seen), 7 (new), 6 (seen).
    # Session 1: 6 8 5 -> 6 and 5 were clicked in session 0 only: both new.
    task = NextItemTask.from_sessions(sessions([[5, 6, 5, 5, 7, 6], [6, 8, 5]]))
    assert task.repeats().tolist() == [False, True, True, False, True, False, False]
    rows = NextItemTask(task.sessions, np.array([8, 3], np.int64))  # any order, any subset
    assert rows.repeats().tolist() == [False, True]


class LastItemPlusOne:
    """Predicts item (last + 1): a scorer whose metrics are easy to work out by hand."""

    n_items = 10

    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        scores = torch.zeros(prefix.shape[0], self.n_items)
        scores[torch.arange(prefix.shape[0]), (prefix[:, -1] + 1) % self.n_items] = 1.0
        scores += torch.arange(self.n_items) * 1e-3  # higher ids rank higher otherwise
        return scores


def test_evaluate_by_hand() -> None:
    # Targets: 6 after [5] (hit, rank 1); 8 after [5, 6] (predicted 7, and 9 ranks above 8: 3);
    # 3 after [8] (predicted 9: rank 1 + 1 + #ids above 3 (4..8) = 7).
    task = NextItemTask.from_sessions(sessions([[5, 6, 8], [8, 3]]))
    metrics, _ = evaluate_next_item(
        LastItemPlusOne(), task, ks=(1, 5), progress=False, batch_size=2
    )
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@5"] == pytest.approx(2 / 3)
    assert metrics["mrr@5"] == pytest.approx((1 + 1 / 3) / 3)
    assert metrics["mrr@1"] == pytest.approx(1 / 3)


def test_evaluate_by_repeat_splits_the_targets() -> None:
    # Session 5 6 5: target 6 after [5] is new (rank 1), 5 after [5, 6] is a repeat
    # (predicted 7; 6, 8 and 9 score above 5 too: rank 5). Session 8 3: 3 is new (rank 7).
    task = NextItemTask.from_sessions(sessions([[5, 6, 5], [8, 3]]))
    metrics, _ = evaluate_next_item(
        LastItemPlusOne(), task, ks=(5,), progress=False, batch_size=2, by_repeat=True
    )
    assert metrics["repeat_share"] == pytest.approx(1 / 3)
    assert metrics["recall@5_repeat"] == 1.0 and metrics["mrr@5_repeat"] == pytest.approx(1 / 5)
    assert metrics["recall@5_new"] == pytest.approx(1 / 2)
    assert metrics["mrr@5_new"] == pytest.approx(1 / 2)
    assert metrics["mrr@5"] == pytest.approx((1 + 1 / 5) / 3)
