"""Aggregators: hand-checked lists, and properties against a naive greedy written from the paper."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.aggregators import candidates, diversity_greedy, max_score

# Two interests, three candidates each. Per item, by hand:
#   item 1: max(0.9 [k=0], 0.6 [k=1]) = 0.9 from interest 0
#   item 2: max(0.8 [k=0], 0.85 [k=1]) = 0.85 from interest 1
#   item 3: 0.1 from interest 0;  item 4: 0.7 from interest 1
SCORES = np.array([[0.9, 0.8, 0.1], [0.85, 0.7, 0.6]], np.float32)
IDS = np.array([[1, 2, 3], [2, 4, 1]])
# categories by row: items 1, 2, 4 in category 0, item 3 in category 1 (row 0 unused)
CATS = np.array([-1, 0, 0, 1, 0])


def test_max_score_deduplicates_with_best_interest() -> None:
    r = max_score(SCORES, IDS, 3)
    assert r.items.tolist() == [1, 2, 4]
    np.testing.assert_allclose(r.scores, [0.9, 0.85, 0.7])
    assert r.interests.tolist() == [0, 1, 1]


def test_max_score_excludes_and_skips_missing_ids() -> None:
    ids = IDS.copy()
    ids[1, 2] = -1  # the index had fewer items than asked for
    r = max_score(SCORES, ids, 10, exclude=np.array([2]))
    assert r.items.tolist() == [1, 4, 3]
    np.testing.assert_allclose(r.scores, [0.9, 0.7, 0.1])
    assert r.interests.tolist() == [0, 1, 0]


def test_one_query_keeps_its_order_breaks_ties_by_row_and_excludes() -> None:
    # one interest (GRU4Rec): rows 9 and 5 tie at 0.5, so row 5 goes first; row 7 is
    # excluded and -1 is a slot the index could not fill
    scores = np.array([[0.9, 0.5, 0.5, 0.4, 0.3, 0.0]], np.float32)
    ids = np.array([[3, 9, 5, 7, 8, -1]])
    r = max_score(scores, ids, 4, exclude=np.array([7]))
    assert r.items.tolist() == [3, 5, 9, 8]
    np.testing.assert_allclose(r.scores, [0.9, 0.5, 0.5, 0.3])
    assert r.interests.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
    ("lam", "expected"),
    [
        # step gains worked out by hand (f + lam * #selected in another category):
        (0.0, [1, 2, 4]),
        # lam=0.2: step 2: item2 0.85, item4 0.7, item3 0.1+0.2=0.3 -> 2;
        #          step 3: item4 0.7, item3 0.1+0.4=0.5 -> 4
        (0.2, [1, 2, 4]),
        # lam=0.5: step 2: item2 0.85 > item3 0.6 -> 2; step 3: item3 0.1+1.0=1.1 > item4 0.7 -> 3
        (0.5, [1, 2, 3]),
        # lam=0.8: step 2: item3 0.9 > item2 0.85 -> 3; step 3: item2 0.85+0.8 > item4 0.7+0.8 -> 2
        (0.8, [1, 3, 2]),
    ],
)
def test_diversity_greedy_hand_checked(lam: float, expected: list[int]) -> None:
    r = diversity_greedy(SCORES, IDS, 3, CATS, lam)
    assert r.items.tolist() == expected
    # the reported score is f(u, i), not the greedy gain
    f = {1: 0.9, 2: 0.85, 3: 0.1, 4: 0.7}
    np.testing.assert_allclose(r.scores, [f[i] for i in expected])


def test_candidates_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        candidates(SCORES, IDS[:, :2])


def naive_greedy(scores, ids, n, categories, lam):
    """The paper's definition, literally: sum g(i, j) over the selected set at every step."""
    best: dict[int, float] = {}
    for s, i in zip(scores.ravel(), ids.ravel(), strict=True):
        if i >= 0:
            best[int(i)] = max(best.get(int(i), -np.inf), float(s))
    chosen: list[int] = []
    while len(chosen) < min(n, len(best)):
        gains = {
            i: best[i] + lam * sum(categories[i] != categories[j] for j in chosen)
            for i in best
            if i not in chosen
        }
        top = max(gains.values())
        # ties: higher f first, then lower row (the documented order)
        chosen.append(min((i for i, g in gains.items() if g == top), key=lambda i: (-best[i], i)))
    return chosen


@st.composite
def retrievals(draw):
    k = draw(st.integers(1, 4))
    width = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 20))
    # distinct rows within one interest (as an index returns them), -1 = no result
    ids = [
        draw(st.lists(st.integers(0, n_items - 1), min_size=width, max_size=width, unique=True))
        if width <= n_items
        else [*draw(st.permutations(range(n_items))), *([-1] * (width - n_items))]
        for _ in range(k)
    ]
    # scores on a coarse grid so that ties really happen
    scores = draw(st.lists(st.integers(0, 8), min_size=k * width, max_size=k * width))
    cats = draw(st.lists(st.integers(-1, 3), min_size=n_items, max_size=n_items))
    return (
        np.array(scores, np.float32).reshape(k, width) / 8,
        np.array(ids).reshape(k, width),
        np.array(cats),
    )


@settings(max_examples=200, deadline=None)
@given(retrievals(), st.integers(1, 10), st.sampled_from([0.0, 0.05, 0.25, 1.0]))
def test_greedy_matches_naive_definition(data, n, lam) -> None:
    scores, ids, cats = data
    # the per-category counting trick must give exactly the literal definition
    assert diversity_greedy(scores, ids, n, cats, lam).items.tolist() == naive_greedy(
        scores.astype(np.float64), ids, n, cats, lam
    )


@settings(max_examples=200, deadline=None)
@given(retrievals(), st.integers(1, 10))
def test_lambda_zero_is_max_score(data, n) -> None:
    scores, ids, cats = data
    a, b = diversity_greedy(scores, ids, n, cats, 0.0), max_score(scores, ids, n)
    assert a.items.tolist() == b.items.tolist()
    assert a.interests.tolist() == b.interests.tolist()
    # no duplicates, scores non-increasing, length = min(n, distinct valid ids)
    assert len(set(b.items.tolist())) == len(b.items) == min(n, len(set(ids[ids >= 0].tolist())))
    assert np.all(np.diff(b.scores) <= 0)
