"""Full-ranking evaluation: metrics by hand, the seen-items ranking against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sasrec import SASRec, SASRecConfig
from training.attention.data import Histories
from training.attention.evaluate import (
    evaluate,
    history_ranks,
    rank_metrics,
    ranks_without_history,
)
from training.data.sessions import Sessions
from training.evaluation.ranking import target_ranks


def _sessions(rows: list[list[int]]) -> Sessions:
    return Sessions(
        items=np.array([i for r in rows for i in r], dtype=np.int32),
        offsets=np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64),
    )


def test_rank_metrics_by_hand() -> None:
    m = rank_metrics(torch.tensor([1.0, 3.0, 7.0, 30.0]), ks=(5, 10))
    assert m["hitrate@5"] == pytest.approx(2 / 4)
    assert m["hitrate@10"] == pytest.approx(3 / 4)
    assert m["ndcg@5"] == pytest.approx((1 + 0.5) / 4)  # 1 / log2(1 + 1), 1 / log2(3 + 1)
    assert m["ndcg@10"] == pytest.approx((1 + 0.5 + 1 / math.log2(8)) / 4)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000))
def test_ranks_without_history_equal_ranking_with_the_history_scored_minus_infinity(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    n_items, rows = 9, 6
    history = [rng.integers(0, n_items, rng.integers(1, 6)).tolist() for _ in range(rows)]
    seqs = _sessions(history)
    # few distinct scores: ties between the target and history items are exercised too
    scores = torch.from_numpy(rng.integers(0, 4, (rows, n_items)).astype(np.float32))
    targets = torch.from_numpy(rng.integers(0, n_items, rows))
    ranks = target_ranks(scores, targets)
    got = ranks_without_history(scores, targets, ranks, seqs, np.arange(rows))
    masked = scores.clone()
    for r, h in enumerate(history):
        masked[r, h] = -torch.inf
    expected = target_ranks(masked, targets)
    for r in range(rows):
        if targets[r].item() in history[r]:
            assert got[r] == n_items + 1  # a target among the removed items is a miss
        else:
            assert got[r] == expected[r]


def test_evaluate_ranks_with_a_real_encoder_by_its_own_scores() -> None:
    """The evaluator's ranks are the model's: checked against scoring each history by hand."""
    model = SASRec(SASRecConfig(n_items=12, dim=8, n_blocks=1, max_len=4, dropout=0.0)).eval()
    history = [[1, 2, 3, 4, 5], [6], [7, 7, 8]]
    data = Histories(_sessions(history), np.array([6, 6, 7]))
    all_items, unseen = evaluate(model, data, batch_size=2)
    with torch.no_grad():
        ranks = []
        for h, t in zip(history, data.targets, strict=True):
            window = torch.tensor([([-1] * 4 + h)[-4:]])
            s = model.encode(window)[0, -1] @ model.item_vectors().T
            ranks.append(1 + int((s > s[t]).sum()))
    assert all_items == rank_metrics(torch.tensor(ranks, dtype=torch.float64))
    # the last two targets are in their histories: misses, ranked after all 12 items
    _, unseen_ranks = history_ranks(model, data, batch_size=2)
    assert unseen_ranks[1:].tolist() == [13.0, 13.0]
    s = model.encode(torch.tensor([[2, 3, 4, 5]]))[0, -1] @ model.item_vectors().T
    removed = sum(int(s[i] > s[6]) for i in history[0])
    assert unseen_ranks[0] == ranks[0] - removed
    assert unseen == rank_metrics(unseen_ranks)
