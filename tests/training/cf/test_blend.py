"""The linear blend: ridge weights by hand, the blended prediction, and a fit that
never reads the ratings of the pairs it is asked to predict."""

from __future__ import annotations

import numpy as np
import pytest

from models.cf.baseline import Baseline
from models.cf.blend import Blend
from models.cf.ratings import Ratings
from tests.training.cf.test_factor import random_ratings
from training.cf.blend_fit import BlendConfig, fit_blend, ridge_weights
from training.params import ParamError


def test_ridge_without_penalty_recovers_an_exact_linear_target():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = 0.5 + x @ np.array([0.2, -1.0, 0.7])
    w, b = ridge_weights(x, y, ridge=0.0)
    assert np.allclose(w, [0.2, -1.0, 0.7]) and b == pytest.approx(0.5)


def test_ridge_by_hand_on_one_centred_column():
    # x = (-1, 1), y = (0, 2): w = sum x y / (sum x^2 + ridge) = 2 / (2 + 2) = 0.5, b = mean y
    w, b = ridge_weights(np.array([[-1.0], [1.0]]), np.array([0.0, 2.0]), ridge=2.0)
    assert w[0] == pytest.approx(0.5) and b == pytest.approx(1.0)


def test_blend_prediction_by_hand():
    a = Baseline(3.0, np.array([0.5, -0.5]), np.array([0.0, 1.0]))
    c = Baseline(4.0, np.array([0.0, 0.0]), np.array([-1.0, 0.0]))
    blend = Blend(names=("a", "c"), members=[a, c], weights=np.array([0.6, 0.5]), intercept=0.4)
    users, items = np.array([0, 1, 0]), np.array([0, 0, 1])
    # a: 3.5, 2.5, 4.5; c: 3.0, 3.0, 4.0; 0.4 + 0.6 a + 0.5 c, the last (5.1) clipped to 5
    expected = [0.4 + 2.1 + 1.5, 0.4 + 1.5 + 1.5, 5.0]
    assert np.allclose(blend.predict(users, items), expected)
    assert np.allclose(blend.user_scores(0), [expected[0], expected[2]])


def test_fit_never_reads_the_test_ratings():
    r = random_ratings(0, n_users=40, n_items=30, n=900)
    test = Ratings.from_triplets([0, 1, 2], [3, 4, 5], [np.nan] * 3, r.n_users, r.n_items)
    config = BlendConfig(members=("baseline", "svd", "itemknn"), tuned="none")
    blend = fit_blend(r, config, seed=0, test=test)
    pred = blend.predict(test.users, test.items)
    assert np.all(np.isfinite(pred)) and np.all((pred >= 1) & (pred <= 5))
    assert blend.names == ("baseline", "svd", "itemknn") and len(blend.weights) == 3


def test_a_blend_of_blends_is_refused():
    with pytest.raises(ParamError):
        BlendConfig(members=("svd", "blend"))
