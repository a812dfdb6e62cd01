"""The generated demo shop a first model trains on when no shared data is there."""

from __future__ import annotations

import numpy as np

from training.data.demo import demo_dataset


def test_demo_catalog_is_a_valid_session_dataset() -> None:
    ds = demo_dataset()
    train, test = ds.parts["train"], ds.parts["test"]
    assert ds.n_items == 1000 and (train.n_sessions, test.n_sessions) == (5400, 600)
    assert train.lengths.min() >= 2 and train.items.max() < 1000
    # a visit mostly walks 1-3 items forward within its category of 50
    first = train.session(0)
    assert np.array_equal(first, demo_dataset().parts["train"].session(0))
    same_category = ds.items.categories[train.items[1:]] == ds.items.categories[train.items[:-1]]
    assert same_category.mean() > 0.7
