"""A validation split carved from a fold's training part, for picking hyperparameters.

The official test part of a fold must not steer the choice of settings, so the
candidates are compared on a random ``frac`` of the *training* ratings held out
(the same kind of random 80/20 cut the ml-100k folds themselves are), fitted on
the rest. Users and items keep their indices, so a model fitted on the smaller
part predicts the held-out pairs directly.
"""

from __future__ import annotations

import numpy as np

from models.cf.ratings import Ratings


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
