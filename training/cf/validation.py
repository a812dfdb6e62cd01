"""A validation split carved from a fold's training part, for picking hyperparameters.

The official test part of a fold must not steer the choice of settings, so the
candidates are compared on a random ``frac`` of the *training* ratings held out
(the same kind of random 80/20 cut the ml-100k folds themselves are), fitted on
the rest. Users and items keep their indices, so a model fitted on the smaller
part predicts the held-out pairs directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.cf.ratings import Ratings
from training.data.sessions import Dataset
from training.evaluation import rating_metrics


def subset(r: Ratings, keep: np.ndarray) -> Ratings:
    """The ratings at the (sorted) positions ``keep``; still sorted by user."""
    return Ratings(
        users=r.users[keep],
        items=r.items[keep],
        values=r.values[keep],
        n_users=r.n_users,
        n_items=r.n_items,
        days=None if r.days is None else r.days[keep],
    )


def holdout(r: Ratings, frac: float = 0.2, seed: int = 0) -> tuple[Ratings, Ratings]:
    """(fit part, validation part): a random ``frac`` of the ratings held out."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    mask = np.random.default_rng(seed).random(len(r)) < frac
    return subset(r, np.flatnonzero(~mask)), subset(r, np.flatnonzero(mask))


def validation_rmse(
    name: str,
    ds: Dataset,
    fold: str,
    params: dict[str, Any],
    seed: int = 0,
    frac: float = 0.2,
    split_seed: int = 0,
) -> float:
    """RMSE on the held-out part of ``fold``'s training ratings (its test part is not read).

    Models that take the *identity* of the pairs to predict (``train+test`` options)
    see the validation pairs in that role, as they would see the test pairs.
    """
    # imported here: the blend family (in training.cf.folds) splits with ``holdout``
    from training.cf.folds import FAMILIES, make_config, ratings_of

    base, _ = ds.fold(fold)
    fit_part, val = holdout(ratings_of(base, ds.n_items), frac, split_seed)
    config = make_config(name, params)
    model = FAMILIES[name].fit(fit_part, config, seed, val)
    return rating_metrics(model.predict(val.users, val.items, val.days), val.values)["rmse"]
