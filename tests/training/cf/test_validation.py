"""The validation split: a partition of the training ratings, repeatable, indices kept."""

from __future__ import annotations

import numpy as np
import pytest

from tests.training.cf.test_factor import random_ratings
from training.cf.validation import holdout


def test_holdout_partitions_the_ratings():
    r = random_ratings(0, n_users=100, n_items=100, n=2000)
    fit, val = holdout(r, frac=0.2, seed=3)
    assert len(fit) + len(val) == len(r)
    assert 0.15 * len(r) < len(val) < 0.25 * len(r)  # 20%, give or take the draw
    assert (fit.n_users, fit.n_items) == (val.n_users, val.n_items) == (r.n_users, r.n_items)
    both = sorted(zip(np.r_[fit.users, val.users], np.r_[fit.items, val.items],
                      np.r_[fit.values, val.values], strict=True))  # fmt: skip
    assert both == sorted(zip(r.users, r.items, r.values, strict=True))
    # same seed, same split; another seed, another split
    assert np.array_equal(holdout(r, 0.2, 3)[1].values, val.values)
    assert not np.array_equal(holdout(r, 0.2, 4)[1].items, val.items)


def test_holdout_rejects_a_fraction_outside_0_1():
    r = random_ratings(0, n_users=5, n_items=5, n=20)
    with pytest.raises(ValueError):
        holdout(r, frac=1.0)
