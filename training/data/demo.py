"""A generated shop for running the service and the tests without any shared dataset."""

from __future__ import annotations

import numpy as np

from training.data.sessions import Dataset, ItemTable, Sessions


def demo_dataset(seed: int = 0) -> Dataset:
    """A generated shop: 1,000 items in 20 categories of 50, 6,000 visits (about 35,000 clicks).

    A visit starts on a random item and mostly walks forward through its
    category (1-3 items a click), sometimes jumping to another category, so a
    sequence model has something real to learn. The last 10% of visits are the
    test part.
    """
    rng = np.random.default_rng(seed)
    n_items, per_category, n_sessions = 1000, 50, 6_000
    lengths = np.clip(rng.geometric(1 / 6, n_sessions), 2, 30)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n_events = int(offsets[-1])
    session = np.repeat(np.arange(n_sessions), lengths)
    first = np.zeros(n_events, bool)
    first[offsets[:-1]] = True
    # per-event moves, summed within each visit: a step along the category, or a jump
    step = np.where(first, 0, rng.integers(1, 4, n_events))
    jump = np.where(first, 0, rng.random(n_events) < 0.15).astype(np.int64)
    start = rng.integers(0, n_items, n_sessions)
    walked = np.cumsum(step) - np.repeat(np.cumsum(step)[offsets[:-1]], lengths)
    jumps = np.cumsum(jump) - np.repeat(np.cumsum(jump)[offsets[:-1]], lengths)
    category = (start[session] // per_category + 7 * jumps) % (n_items // per_category)
    within = (start[session] % per_category + walked) % per_category
    items = (category * per_category + within).astype(np.int32)
    split = int(n_sessions * 0.9)

    def part(lo: int, hi: int) -> Sessions:
        a, b = offsets[lo], offsets[hi]
        return Sessions(items[a:b].copy(), (offsets[lo : hi + 1] - a).astype(np.int64))

    table = ItemTable(
        ids=np.arange(1, n_items + 1, dtype=np.int64),
        categories=(np.arange(n_items) // per_category).astype(np.int32),
        category_names=np.arange(n_items // per_category),
    )
    return Dataset(
        name="demo",
        kind="session",
        items=table,
        parts={"train": part(0, split), "test": part(split, n_sessions)},
        notes="generated demo catalog (a first model without the shared data)",
    )
