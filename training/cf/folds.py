"""Fit any CF model on a rating fold and measure RMSE / MAE on its test part."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.cf.ratings import SECONDS_PER_DAY, Ratings
from models.cf.recommend import RatingModel
from training.cf import baseline_fit, blend_fit, factor_fit, knn_fit, rbm_fit
from training.cf.sgd_kernels import warm_up
from training.data.sessions import Dataset, Sessions
from training.evaluation import rating_metrics
from training.params import ParamError, Source, load_config


def ratings_of(part: Sessions, n_items: int) -> Ratings:
    """A rating part (one row per user) as flat columns; times become days."""
    if part.values is None:
        raise ValueError("this part has no rating values")
    return Ratings(
        users=part.session_of_event(),
        items=part.items.astype(np.int64),
        values=part.values.astype(np.float64),
        n_users=part.n_sessions,
        n_items=n_items,
        days=None if part.times is None else part.times / SECONDS_PER_DAY,
    )


@dataclass(frozen=True)
class Family:
    """How to build a model's config and fit it: ``fit(train, config, seed, test) -> model``."""

    config: type
    fit: Callable[..., RatingModel]
    needs_times: bool = False


def _implicit_union(train: Ratings, test: Ratings) -> Ratings:
    """Train plus the *identity* of test items (their ratings are never read)."""
    return Ratings.from_triplets(
        np.r_[train.users, test.users],
        np.r_[train.items, test.items],
        np.zeros(len(train) + len(test)),
        train.n_users,
        train.n_items,
    )


def _implicit_of(train: Ratings, c: Any, test: Ratings | None) -> Ratings | None:
    return _implicit_union(train, test) if c.implicit == "train+test" and test else None


def _fit_svdpp(train: Ratings, c: Any, seed: int, test: Ratings | None) -> RatingModel:
    return factor_fit.fit_svdpp(train, c, seed, implicit=_implicit_of(train, c, test))


def _fit_timesvdpp(train: Ratings, c: Any, seed: int, test: Ratings | None) -> RatingModel:
    return factor_fit.fit_timesvdpp(train, c, seed, implicit=_implicit_of(train, c, test))


FAMILIES: dict[str, Family] = {
    "baseline": Family(
        baseline_fit.BaselineConfig, lambda r, c, s, t: baseline_fit.fit_baseline(r, c, s)
    ),
    "svd": Family(factor_fit.SVDConfig, lambda r, c, s, t: factor_fit.fit_svd(r, c, s)),
    "svdpp": Family(factor_fit.SVDppConfig, _fit_svdpp),
    "timesvdpp": Family(factor_fit.TimeSVDppConfig, _fit_timesvdpp, needs_times=True),
    "rbm": Family(rbm_fit.RBMConfig, lambda r, c, s, t: rbm_fit.fit_rbm(r, c, s, test=t)),
    "itemknn": Family(knn_fit.KNNConfig, lambda r, c, s, t: knn_fit.fit_knn(r, c, False)),
    "userknn": Family(knn_fit.KNNConfig, lambda r, c, s, t: knn_fit.fit_knn(r, c, True)),
    # a linear blend of the others, weights fitted on ratings held out of the fold's base
    "blend": Family(blend_fit.BlendConfig, blend_fit.fit_blend),
}


@dataclass
class FoldResult:
    fold: str
    metrics: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    n_train: int
    n_test: int
    model: RatingModel
    config: Any


def make_config(name: str, *params: Source) -> Any:
    """The config of CF model ``name`` from its defaults and ``params`` (files, ``k=v``)."""
    if name not in FAMILIES:
        raise KeyError(f"unknown CF model {name!r}; choose one of {', '.join(FAMILIES)}")
    return load_config(FAMILIES[name].config, *params, what=name)


def fit_model(
    name: str, train: Ratings, config: Any, seed: int = 0, test: Ratings | None = None
) -> RatingModel:
    return FAMILIES[name].fit(train, config, seed, test)


def evaluate_fold(
    name: str, ds: Dataset, fold: str, params: dict[str, Any], seed: int = 0
) -> FoldResult:
    config = make_config(name, params)
    base, test_part = ds.fold(fold)
    train = ratings_of(base, ds.n_items)
    test = ratings_of(test_part, ds.n_items)
    if FAMILIES[name].needs_times and train.days is None:
        raise ParamError(f"{name} needs rating times; {ds.name} fold {fold} has none")
    warm_up()
    t0 = time.perf_counter()
    model = fit_model(name, train, config, seed, test)
    t1 = time.perf_counter()
    pred = model.predict(test.users, test.items, test.days)
    t2 = time.perf_counter()
    return FoldResult(
        fold=fold,
        metrics=rating_metrics(pred, test.values),
        fit_seconds=t1 - t0,
        predict_seconds=t2 - t1,
        n_train=len(train),
        n_test=len(test),
        model=model,
        config=config,
    )
