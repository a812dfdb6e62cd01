"""CoSeRec's offline item similarity (ItemCF-IUF): by hand, and against a plain loop."""

from __future__ import annotations

import math
from itertools import permutations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.item_similarity import item_cf_iuf, most_similar_items


def _csr(sequences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    items = np.array([i for s in sequences for i in s], dtype=np.int32)
    offsets = np.r_[0, np.cumsum([len(s) for s in sequences])].astype(np.int64)
    return items, offsets


def _by_loop(sequences: list[list[int]], n_items: int) -> np.ndarray:
    """The definition, one sequence and one pair at a time."""
    co = np.zeros((n_items, n_items))
    holders = np.zeros(n_items)
    for s in sequences:
        distinct = set(s)
        holders[list(distinct)] += 1
        for i, j in permutations(distinct, 2):
            co[i, j] += 1 / math.log(1 + len(distinct))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(co / np.sqrt(np.outer(holders, holders)))


def test_item_cf_iuf_by_hand() -> None:
    # 0 and 1 share a sequence of 3 and one of 2; 2 and 3 one of 2; 4 is alone; 5 never seen
    sequences = [[0, 1, 2], [0, 1], [2, 3], [4], [0, 0]]
    sim = item_cf_iuf(*_csr(sequences), n_items=6).to_dense()
    third, half = 1 / math.log(4), 1 / math.log(3)
    assert sim[0, 1].item() == pytest.approx((third + half) / math.sqrt(3 * 2))  # 0 is in 3
    assert sim[2, 3].item() == pytest.approx(half / math.sqrt(2 * 1))
    assert sim[0, 2].item() == pytest.approx(third / math.sqrt(3 * 2))
    assert torch.equal(sim, sim.T) and not sim.diagonal().any()
    assert most_similar_items(*_csr(sequences), n_items=6).tolist() == [1, 0, 3, 2, 4, 5]


def test_a_long_sequence_says_less_than_a_short_one() -> None:
    """0 meets 2 in a sequence of 2 and 1 in one of 4: the inverse user frequency makes 2
    its neighbour (plain co-counts would tie, and a tie goes to the lowest row, 1)."""
    sequences = [[0, 2], [0, 1, 3, 4]]
    assert most_similar_items(*_csr(sequences), n_items=5)[0].item() == 2


def test_ties_go_to_the_lowest_row_and_a_re_click_counts_once() -> None:
    assert most_similar_items(*_csr([[0, 1, 2]]), n_items=3).tolist() == [1, 0, 0]
    once, twice = item_cf_iuf(*_csr([[0, 1]]), 2), item_cf_iuf(*_csr([[0, 1, 0, 0]]), 2)
    torch.testing.assert_close(once.to_dense(), twice.to_dense())


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=6), min_size=1, max_size=12))
def test_matches_the_definition_by_loop(sequences: list[list[int]]) -> None:
    expected = _by_loop(sequences, 12)
    sim = item_cf_iuf(*_csr(sequences), n_items=12).to_dense().numpy()
    np.testing.assert_allclose(sim, expected, rtol=1e-12, atol=1e-15)
    best = most_similar_items(*_csr(sequences), n_items=12).numpy()
    for item in range(12):
        if expected[item].max() > 0:
            top = np.flatnonzero(np.isclose(expected[item], expected[item].max(), rtol=1e-12))
            assert best[item] in top  # one of the best (rounding may order exact ties)
        else:
            assert best[item] == item
