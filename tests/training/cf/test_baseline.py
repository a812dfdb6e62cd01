"""Baseline predictors: ALS by hand and at its fixed point, SGD by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.cf.ratings import Ratings
from training.cf.baseline_fit import (
    BaselineConfig,
    als_biases,
    als_scaled_biases,
    fit_baseline,
)
from training.cf.sgd_kernels import baseline_epoch


def tiny() -> Ratings:
    return Ratings.from_triplets([0, 0, 1], [0, 1, 0], [5.0, 3.0, 4.0], 2, 2)


def test_one_als_epoch_by_hand():
    bu, bi = als_biases(tiny(), mu=4.0, n_epochs=1, reg_u=1.0, reg_i=1.0)
    # b_i first: i0 = (1 + 0) / (1 + 2), i1 = -1 / (1 + 1); then b_u given those
    assert bi == pytest.approx([1 / 3, -0.5])
    assert bu == pytest.approx([(5 - 4 - 1 / 3 + 3 - 4 + 0.5) / 3, (4 - 4 - 1 / 3) / 2])


def test_als_reaches_its_fixed_point():
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 20, 300), rng.integers(0, 30, 300)
    r = Ratings.from_triplets(u, i, rng.integers(1, 6, 300).astype(float), 20, 30)
    bu, bi = als_biases(r, r.mean, n_epochs=300, reg_u=3.0, reg_i=2.0)
    res_i = np.bincount(r.items, r.values - r.mean - bu[r.users] - bi[r.items], 30)
    res_u = np.bincount(r.users, r.values - r.mean - bu[r.users] - bi[r.items], 20)
    # stationarity of the ridge objective: sum of residuals = reg * bias
    assert res_i == pytest.approx(2.0 * bi, abs=1e-9)
    assert res_u == pytest.approx(3.0 * bu, abs=1e-9)


def test_one_scaled_als_epoch_by_hand():
    bu, bi, cu = als_scaled_biases(tiny(), mu=4.0, n_epochs=1, reg_u=1.0, reg_i=1.0, reg_c=1.0)
    # c_u starts at 1, so b_i and b_u are the plain epoch's: bi = (1/3, -1/2), bu = (1/18, -1/6)
    assert bi == pytest.approx([1 / 3, -0.5])
    assert bu == pytest.approx([1 / 18, -1 / 6])
    # c_0 = (17/18 * 1/3 + (-19/18) * (-1/2) + 1) / (1/9 + 1/4 + 1) = 199/147
    # c_1 = (1/6 * 1/3 + 1) / (1/9 + 1) = 19/20
    assert cu == pytest.approx([199 / 147, 19 / 20])


def test_scaled_als_reaches_its_fixed_point_and_a_stiff_scale_is_the_plain_baseline():
    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 20, 300), rng.integers(0, 30, 300)
    r = Ratings.from_triplets(u, i, rng.integers(1, 6, 300).astype(float), 20, 30)
    bu, bi, cu = als_scaled_biases(r, r.mean, 500, reg_u=3.0, reg_i=2.0, reg_c=1.0)
    err = r.values - r.mean - bu[r.users] - cu[r.users] * bi[r.items]
    # stationarity of the ridge objective in each block (c_u is ridged towards 1)
    assert np.bincount(r.items, err * cu[r.users], 30) == pytest.approx(2.0 * bi, abs=1e-8)
    assert np.bincount(r.users, err, 20) == pytest.approx(3.0 * bu, abs=1e-8)
    assert np.bincount(r.users, err * bi[r.items], 20) == pytest.approx(cu - 1, abs=1e-8)
    bu1, bi1, cu1 = als_scaled_biases(r, r.mean, 50, reg_u=3.0, reg_i=2.0, reg_c=1e12)
    bu0, bi0 = als_biases(r, r.mean, 50, reg_u=3.0, reg_i=2.0)
    assert cu1 == pytest.approx(1.0) and bu1 == pytest.approx(bu0) and bi1 == pytest.approx(bi0)


def test_one_sgd_step_by_hand():
    bu, bi = np.zeros(1), np.zeros(1)
    one = np.array([0], np.int64)
    baseline_epoch(one, one, np.array([5.0]), 4.0, bu, bi, 0.1, 0.5, 0, True)
    assert bu[0] == pytest.approx(0.1) and bi[0] == pytest.approx(0.1)  # err = 1


def test_sgd_is_repeatable_and_close_to_als():
    rng = np.random.default_rng(2)
    u, i = rng.integers(0, 20, 400), rng.integers(0, 30, 400)
    r = Ratings.from_triplets(u, i, rng.integers(1, 6, 400).astype(float), 20, 30)
    a = fit_baseline(r, BaselineConfig(method="sgd", n_epochs=30), seed=3)
    b = fit_baseline(r, BaselineConfig(method="sgd", n_epochs=30), seed=3)
    assert np.array_equal(a.bu, b.bu) and np.array_equal(a.bi, b.bi)
    als = fit_baseline(r, BaselineConfig(reg_u=0.02 * 20, reg_i=0.02 * 13))
    assert np.corrcoef(a.bi, als.bi)[0, 1] > 0.9
