"""kNN similarities and predictions, checked by hand on a 3 x 3 rating matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from models.cf.baseline import Baseline
from models.cf.knn import build_knn, similarity_matrix

# users x items; user 1 has not rated item 2
#        i0 i1 i2
# u0:     5  3  4
# u1:     3  1  -
# u2:     4  3  5
USERS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
ITEMS = np.array([0, 1, 2, 0, 1, 0, 1, 2])
VALUES = np.array([5.0, 3, 4, 3, 1, 4, 3, 5])


def matrix() -> sp.csr_matrix:
    return sp.csr_matrix((VALUES, (USERS, ITEMS)), shape=(3, 3))


def test_pearson_by_hand():
    sim = similarity_matrix(matrix(), "pearson")
    # i0 = 5,3,4 (mean 4), i1 = 3,1,3 (mean 7/3): 2 / sqrt(2 * 8/3) = sqrt(3)/2
    assert sim[0, 1] == pytest.approx(math.sqrt(3) / 2)
    # common support of i0, i2 is u0, u2: (5,4) vs (4,5) -> perfectly anti-correlated
    assert sim[0, 2] == pytest.approx(-1.0)
    # i1 is constant (3, 3) on its common support with i2: no variance, similarity 0
    assert sim[1, 2] == pytest.approx(0.0)
    assert np.allclose(sim, sim.T)
    assert np.allclose(np.diag(sim), 1.0)


def test_shrunk_pearson_by_hand():
    sim = similarity_matrix(matrix(), "pearson", shrinkage=100)
    # (n - 1) / (n - 1 + 100) with n = 3 and n = 2 common users
    assert sim[0, 1] == pytest.approx(2 / 102 * math.sqrt(3) / 2)
    assert sim[0, 2] == pytest.approx(-1 / 101)


def test_cosine_by_hand():
    sim = similarity_matrix(matrix(), "cosine")
    assert sim[0, 1] == pytest.approx(30 / math.sqrt(50 * 19))
    assert sim[0, 2] == pytest.approx(40 / 41)  # sums over the common support only
    assert sim[1, 2] == pytest.approx(27 / math.sqrt(18 * 41))


def test_min_support_zeroes_rare_pairs():
    sim = similarity_matrix(matrix(), "cosine", min_support=3)
    assert sim[0, 2] == 0.0 and sim[0, 1] > 0


def knn(k: int, center: str = "none", similarity: str = "cosine", user_based: bool = False):
    mu = VALUES.mean()
    bl = Baseline(mu, np.array([0.2, -0.5, 0.3]), np.array([0.4, -1.0, 0.6]))
    return build_knn(USERS, ITEMS, VALUES, 3, 3, bl, similarity=similarity,
                     user_based=user_based, k=k, shrinkage=0.0, center=center)  # fmt: skip


def test_prediction_is_the_weighted_average_of_the_k_nearest():
    s_i0, s_i1 = 40 / 41, 27 / math.sqrt(18 * 41)  # similarities of i2 to i0 and i1
    both = knn(k=2).predict(np.array([1]), np.array([2]))[0]
    assert both == pytest.approx((s_i0 * 3 + s_i1 * 1) / (s_i0 + s_i1))
    # k = 1 keeps only i1, the nearer neighbour (0.9939 > 0.9756), rated 1 by u1
    assert knn(k=1).predict(np.array([1]), np.array([2]))[0] == pytest.approx(1.0)


def test_baseline_centred_prediction_by_hand():
    model = knn(k=2, center="baseline")
    mu = VALUES.mean()
    s = np.array([40 / 41, 27 / math.sqrt(18 * 41)])
    residual = np.array([3 - (mu - 0.5 + 0.4), 1 - (mu - 0.5 - 1.0)])
    expected = mu - 0.5 + 0.6 + (s * residual).sum() / s.sum()
    assert model.predict(np.array([1]), np.array([2]))[0] == pytest.approx(expected)


def test_denominator_shrinkage_pulls_the_residual_towards_the_baseline():
    model = knn(k=2, center="baseline")
    model.den_shrinkage = 0.5
    mu = VALUES.mean()
    s = np.array([40 / 41, 27 / math.sqrt(18 * 41)])
    residual = np.array([3 - (mu - 0.5 + 0.4), 1 - (mu - 0.5 - 1.0)])
    # sum s v / (0.5 + sum s): the same weighted residual, scaled by 1.97 / 2.47
    expected = mu - 0.5 + 0.6 + (s * residual).sum() / (0.5 + s.sum())
    assert model.predict(np.array([1]), np.array([2]))[0] == pytest.approx(expected)


def test_user_based_on_a_user_scaled_baseline_by_hand():
    # residuals and centre of mu + b_u + c_u b_i: each user scales the item bias
    mu = VALUES.mean()
    bu, bi, cu = np.array([0.2, -0.5, 0.3]), np.array([0.4, -1.0, 0.6]), np.array([1.5, 0.5, 2.0])
    bl = Baseline(mu, bu, bi, cu=cu)
    model = build_knn(USERS, ITEMS, VALUES, 3, 3, bl, similarity="cosine", user_based=True,
                      k=2, shrinkage=0.0, center="baseline")  # fmt: skip
    # u1 = (3, 1) on i0, i1; u0 = (5, 3), u2 = (4, 3) there; both rated i2 (4 and 5)
    s = np.array([18 / math.sqrt(10 * 34), 15 / math.sqrt(10 * 25)])
    residual = np.array([4 - (mu + 0.2 + 1.5 * 0.6), 5 - (mu + 0.3 + 2.0 * 0.6)])
    expected = mu - 0.5 + 0.5 * 0.6 + (s * residual).sum() / s.sum()
    assert model.predict(np.array([1]), np.array([2]))[0] == pytest.approx(expected)
    assert bl.baseline(np.array([1]), np.array([2]))[0] == pytest.approx(mu - 0.5 + 0.3)


def test_mean_centred_prediction_by_hand():
    # item means: i0 = 4, i1 = 7/3, i2 = 4.5
    s = np.array([40 / 41, 27 / math.sqrt(18 * 41)])
    expected = 4.5 + (s * np.array([3 - 4, 1 - 7 / 3])).sum() / s.sum()
    assert knn(k=2, center="mean").predict(np.array([1]), np.array([2]))[0] == pytest.approx(
        expected
    )


def test_negative_neighbours_do_not_vote_and_fall_back_to_the_baseline():
    # pearson_baseline of i2 to its neighbours can be negative; with min_k neighbours of
    # positive similarity missing, the prediction is the baseline itself.
    model = knn(k=2, center="baseline", similarity="pearson_baseline")
    model.sim[:] = -0.5
    np.fill_diagonal(model.sim, 1.0)
    model._sim_cache = None
    mu = VALUES.mean()
    assert model.predict(np.array([1]), np.array([2]))[0] == pytest.approx(mu - 0.5 + 0.6)


def test_user_based_is_item_based_on_the_transposed_ratings():
    ub = knn(k=2, user_based=True, similarity="pearson")
    mu = VALUES.mean()
    bl = Baseline(mu, np.array([0.4, -1.0, 0.6]), np.array([0.2, -0.5, 0.3]))
    ib = build_knn(ITEMS, USERS, VALUES, 3, 3, bl, similarity="pearson", k=2,
                   shrinkage=0.0, center="none")  # fmt: skip
    users, items = np.array([1, 0, 2]), np.array([2, 1, 0])
    assert np.allclose(ub.predict(users, items), ib.predict(items, users))
