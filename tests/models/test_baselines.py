"""POP, S-POP and Item-KNN: hand-checked scores, and the published Diginetica figures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.baselines import ItemKNN, Pop, SessionPop
from tests.conftest import needs_shared_data
from training.data import load_dataset
from training.evaluation import NextItemTask, evaluate_next_item

# Three training sessions over 4 items: [0, 1], [0, 1, 2], [0, 3]
ITEMS = np.array([0, 1, 0, 1, 2, 0, 3], dtype=np.int32)
OFFSETS = np.array([0, 2, 5, 7], dtype=np.int64)


def test_pop_counts_events() -> None:
    pop = Pop().fit(ITEMS, OFFSETS, 4)
    assert pop.score(torch.tensor([[-1, 2]]), torch.tensor([1])).tolist() == [[3.0, 2.0, 1.0, 1.0]]


def test_spop_counts_the_prefix_and_breaks_ties_by_popularity() -> None:
    spop = SessionPop().fit(ITEMS, OFFSETS, 4)
    s = spop.score(torch.tensor([[3, 2, 3]]), torch.tensor([3]))[0]
    # counts in prefix: item 3 twice, item 2 once; popularity / (max + 1) = [3, 2, 1, 1] / 4
    assert s.tolist() == pytest.approx([0.75, 0.5, 1.25, 2.25])


def test_itemknn_cosine_by_hand() -> None:
    knn = ItemKNN().fit(ITEMS, OFFSETS, 4)
    sim = knn.sim.toarray()
    # item 0 is in 3 sessions, item 1 in 2, both together in 2: 2 / sqrt(3 * 2)
    assert sim[0, 1] == pytest.approx(2 / math.sqrt(6))
    assert sim[0, 3] == pytest.approx(1 / math.sqrt(3))
    assert sim[2, 3] == 0.0 and sim[0, 0] == 0.0  # no co-occurrence; self excluded
    scores = knn.score(torch.tensor([[-1, 1]]), torch.tensor([1]))[0]
    assert scores.argmax().item() == 0
    # sim(1, 2) = 1 / sqrt(2); item 3 never meets item 1, yet the popularity tie-breaker
    # lifts it above 0 while keeping it below every real neighbour
    assert scores[2] > scores[3] > 0


def test_itemknn_regularised_similarity() -> None:
    knn = ItemKNN(alpha=0.5, lmbd=2.0).fit(ITEMS, OFFSETS, 4)
    assert knn.sim[0, 1] == pytest.approx(2 / (math.sqrt(3 * 2) + 2.0))


def test_itemknn_neighbour_cap_keeps_the_strongest() -> None:
    knn = ItemKNN(n_neighbors=1).fit(ITEMS, OFFSETS, 4)
    row = knn.sim[0].toarray()[0]
    assert np.count_nonzero(row) == 1 and row[1] > 0


def test_fit_does_not_touch_the_training_arrays() -> None:
    items = ITEMS.copy()
    items.flags.writeable = False  # as loaded datasets are
    ItemKNN().fit(items, OFFSETS, 4)
    assert np.array_equal(items, ITEMS)


@needs_shared_data
@pytest.mark.parametrize(
    ("model", "recall", "mrr", "tolerance"),
    [
        # SR-GNN (AAAI 2019) Table 2, Diginetica, P@20 / MRR@20 in percent
        (Pop(), 0.89, 0.20, 0.3),
        (SessionPop(), 21.06, 13.68, 0.3),
        (ItemKNN(), 35.75, 11.57, 1.5),
    ],
    ids=["pop", "spop", "itemknn"],
)
def test_published_diginetica_baselines(model, recall: float, mrr: float, tolerance: float) -> None:
    ds = load_dataset("diginetica")
    train = ds.part("train")
    model.fit(train.items, train.offsets, ds.n_items)
    metrics, _ = evaluate_next_item(model, NextItemTask.from_dataset(ds), progress=False)
    assert len(NextItemTask.from_dataset(ds)) == 60_858
    assert abs(metrics["recall@20"] * 100 - recall) <= tolerance
    assert abs(metrics["mrr@20"] * 100 - mrr) <= tolerance
