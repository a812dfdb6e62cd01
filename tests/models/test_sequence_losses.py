"""The attention models' losses, against hand-computed values and against each other."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sequence_losses import (
    bce_one_negative,
    full_cross_entropy,
    negatives_not_in,
    sampled_cross_entropy,
    sampling_probabilities,
)

ITEMS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_bce_one_negative_by_hand() -> None:
    # h . e_target = 1 (item 0), h . e_negative = 0 (item 1)
    hidden, targets, negatives = torch.tensor([[1.0, 0.0]]), torch.tensor([0]), torch.tensor([1])
    expected = -math.log(1 / (1 + math.exp(-1))) - math.log(1 - 0.5)
    assert bce_one_negative(hidden, targets, negatives, ITEMS).item() == pytest.approx(expected)


def test_full_cross_entropy_by_hand() -> None:
    hidden, targets = torch.tensor([[2.0, 0.0]]), torch.tensor([2])  # logits 2, 0, 2
    expected = -math.log(math.exp(2) / (2 * math.exp(2) + 1))
    assert full_cross_entropy(hidden, targets, ITEMS).item() == pytest.approx(expected)


def test_sampled_softmax_over_every_item_is_the_full_softmax() -> None:
    """Uniform log Q is a constant, and the target drawn as its own negative is masked out."""
    torch.manual_seed(0)
    hidden, items = torch.randn(6, 4), torch.randn(9, 4)
    targets = torch.randint(9, (6,))
    log_q = torch.full((9,), -math.log(9))
    every = torch.arange(9)
    full = full_cross_entropy(hidden, targets, items)
    shared = sampled_cross_entropy(hidden, targets, items, every, log_q)
    per_position = sampled_cross_entropy(hidden, targets, items, every.expand(6, 9), log_q)
    assert shared.item() == pytest.approx(full.item(), rel=1e-5)
    assert per_position.item() == pytest.approx(full.item(), rel=1e-5)


def test_sampled_softmax_by_hand_with_log_q() -> None:
    hidden, targets = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    # logits - log Q: target 1 - log .5; negatives item 1: 0 - log .25, item 2: 1 - log .25
    z = torch.tensor([1 - math.log(0.5), -math.log(0.25), 1 - math.log(0.25)])
    expected = F.cross_entropy(z[None], torch.tensor([0])).item()
    got = sampled_cross_entropy(hidden, targets, ITEMS, torch.tensor([1, 2]), log_q)
    assert got.item() == pytest.approx(expected)
    per_position = sampled_cross_entropy(hidden, targets, ITEMS, torch.tensor([[1, 2]]), log_q)
    assert per_position.item() == pytest.approx(expected)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_items=st.integers(12, 40))
def test_negatives_are_outside_their_window(seed: int, n_items: int) -> None:
    g = torch.Generator().manual_seed(seed)
    history = torch.randint(-1, n_items, (50, 10), generator=g)
    neg = negatives_not_in(history, n_items, g)
    assert neg.shape == (50,)
    assert ((neg >= 0) & (neg < n_items)).all()
    assert not (neg[:, None] == history).any()


def test_negatives_need_a_catalog_larger_than_the_window() -> None:
    with pytest.raises(ValueError, match="outside windows"):
        negatives_not_in(torch.zeros(2, 5, dtype=torch.long), 5)


def test_sampling_probabilities() -> None:
    counts = torch.tensor([3, 1, 0])
    assert torch.allclose(sampling_probabilities(counts, "uniform"), torch.full((3,), 1 / 3))
    # an unseen item still gets the weight of one event
    assert torch.allclose(
        sampling_probabilities(counts, "popularity"), torch.tensor([0.6, 0.2, 0.2])
    )
    with pytest.raises(ValueError, match="sampling"):
        sampling_probabilities(counts, "zipf")  # type: ignore[arg-type]
