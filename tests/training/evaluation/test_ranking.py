"""Rank computation and Recall/MRR, hand-checked for every tie mode."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from training.evaluation.ranking import RankMetrics, target_ranks

# Row 0: target (item 1) scores 0.5; one item higher (0.9), two equal (items 1, 3).
# Row 1: target (item 0) is the unique best.
SCORES = torch.tensor([[0.9, 0.5, 0.1, 0.5], [3.0, 1.0, 2.0, 0.0]])
TARGETS = torch.tensor([1, 0])


@pytest.mark.parametrize(
    ("ties", "expected"),
    [
        ("standard", [2.0, 1.0]),  # 1 + #higher
        ("conservative", [3.0, 1.0]),  # #higher + #equal (target included)
        ("median", [2.5, 1.0]),  # 1 + higher + (equal - 1) / 2
    ],
)
def test_tie_modes(ties: str, expected: list[float]) -> None:
    assert target_ranks(SCORES, TARGETS, ties).tolist() == expected


def test_nan_target_is_a_miss() -> None:
    scores = torch.tensor([[float("nan"), 1.0, 2.0]])
    assert target_ranks(scores, torch.tensor([0])).tolist() == [4.0]


def test_unknown_tie_mode() -> None:
    with pytest.raises(ValueError):
        target_ranks(SCORES, TARGETS, "optimistic")  # type: ignore[arg-type]


def test_recall_and_mrr_by_hand() -> None:
    m = RankMetrics(ks=(1, 3))
    m.add(torch.tensor([1.0, 2.0, 5.0]))
    m.add(torch.tensor([3.0]))
    r = m.result()
    # ranks 1, 2, 5, 3: @1 one hit; @3 three hits with reciprocal ranks 1 + 1/2 + 1/3
    assert r["recall@1"] == pytest.approx(1 / 4)
    assert r["mrr@1"] == pytest.approx(1 / 4)
    assert r["recall@3"] == pytest.approx(3 / 4)
    assert r["mrr@3"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)


def test_empty_metrics_refuse() -> None:
    with pytest.raises(ValueError):
        RankMetrics().result()


@given(st.lists(st.integers(0, 5), min_size=2, max_size=30), st.data())
def test_ranks_agree_with_sorting(values: list[int], data: st.DataObject) -> None:
    """standard <= median <= conservative, and standard equals a sort-based rank."""
    target = data.draw(st.integers(0, len(values) - 1))
    scores = torch.tensor([values], dtype=torch.float32)
    t = torch.tensor([target])
    std, med, con = (
        target_ranks(scores, t, m).item() for m in ("standard", "median", "conservative")
    )
    assert std <= med <= con
    assert std == 1 + sum(v > values[target] for v in values)
    assert con == sum(v >= values[target] for v in values)
