"""Full-fold accuracy of the tuned CF models against the issue's targets (slow: minutes).

Parameters come from ``training/model_params/cf_<model>_<dataset>.toml``; seed 0. A
target that the model does not reach yet is an ``xfail(strict=True)`` that names
the measured figure, so reaching it later turns the test red until it is updated.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import needs_shared_data
from training.cf.folds import evaluate_fold
from training.data import load_dataset
from training.params import read_params


def mean_rmse(model: str, dataset: str, folds: tuple[str, ...]) -> float:
    ds = load_dataset(dataset)
    params = read_params(f"cf_{model}_{dataset}")
    return float(np.mean([evaluate_fold(model, ds, f, params).metrics["rmse"] for f in folds]))


ML100K = ("u1", "u2", "u3", "u4", "u5")
ML1M = ("f1", "f2", "f3", "f4", "f5")


@pytest.mark.slow
@needs_shared_data
@pytest.mark.parametrize(
    ("model", "target"),
    [
        ("baseline", 0.950),
        ("svd", 0.910),
        ("svdpp", 0.900),
        ("timesvdpp", 0.900),
        ("itemknn", 0.915),
        ("userknn", 0.915),
        ("rbm", 0.940),
    ],
)
def test_ml100k_five_fold_rmse(model: str, target: float):
    assert mean_rmse(model, "ml-100k", ML100K) <= target


@pytest.mark.slow
@needs_shared_data
@pytest.mark.parametrize(("model", "target"), [("svd", 0.860), ("svdpp", 0.850)])
def test_ml1m_five_fold_rmse(model: str, target: float):
    assert mean_rmse(model, "ml-1m", ML1M) <= target


@pytest.mark.slow
@needs_shared_data
def test_ml100k_best_model_beats_the_anchor():
    # GLocal-K's published 0.8889 is the anchor the issue sets for the best model; the
    # best is the blend (its defaults: the tuned member files), measured 0.8803 on u1..u5
    # (timeSVD++ alone: 0.8922). About half an hour on two busy cores.
    ds = load_dataset("ml-100k")
    rmse = [evaluate_fold("blend", ds, f, {}).metrics["rmse"] for f in ML100K]
    assert float(np.mean(rmse)) <= 0.889
