"""Every registered dataset loads in place, with the counts its provenance README states."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.conftest import needs_shared_data
from training.data import load_dataset, registered
from training.data.registry import _load_cached

pytestmark = needs_shared_data

# (dataset, part) -> (rows, events), from the shared data README.
EXPECTED = {
    ("diginetica", "train"): (186_670, 906_140),
    ("diginetica", "test"): (15_963, 76_821),
    ("tmall", "train"): (65_286, 416_554),
    ("tmall", "test"): (1_027, 26_925),
    ("retailrocket", "train"): (126_168, 685_984),
    ("retailrocket", "test"): (4_735, 24_602),
    ("yoochoose-100k", "train"): (17_794, 70_278),
    ("yoochoose-100k", "test"): (3_416, 13_568),
    ("yoochoose-100k", "train_tr"): (None, 53_254),
    ("yoochoose-100k", "valid"): (None, 16_539),
    ("ml-100k", "all"): (943, 100_000),
    ("ml-100k", "u1.test"): (943, 20_000),
    ("ml-100k", "ua.test"): (943, 9_430),
    ("ml-1m", "all"): (6_040, 1_000_209),
    ("ml-1m", "timestamped"): (6_040, 487_650),
    ("amazon-beauty", "all"): (22_363, 198_502),
    ("amazon-sports", "all"): (35_598, 296_337),
    ("amazon-toys", "all"): (19_412, 167_597),
}
N_ITEMS = {
    "diginetica": 43_097,
    "tmall": 40_727,
    "retailrocket": 36_968,
    "yoochoose-100k": 2_933,
    "ml-100k": 1_682,
    "ml-1m": 3_883,
    "amazon-beauty": 12_101,
    "amazon-sports": 18_357,
    "amazon-toys": 11_924,
}
PREDICTIONS = {"diginetica": 60_858, "tmall": 25_898, "retailrocket": 15_132}


@pytest.mark.parametrize("entry", registered(), ids=lambda e: e.name)
def test_every_registered_dataset_loads_quickly(entry) -> None:
    _load_cached.cache_clear()
    start = time.perf_counter()
    ds = load_dataset(entry.name)
    seconds = time.perf_counter() - start
    assert seconds < 15, f"{entry.name} took {seconds:.1f} s"
    assert ds.kind == entry.kind and len(ds.sha256) == 64
    for part, sessions in ds.parts.items():
        assert sessions.items.dtype == np.int32 and sessions.offsets.dtype == np.int64
        assert sessions.items.min(initial=0) >= 0 and sessions.items.max(initial=0) < ds.n_items
        if (entry.name, part) in EXPECTED:
            n_rows, n_events = EXPECTED[(entry.name, part)]
            assert n_rows is None or sessions.n_sessions == n_rows
            assert sessions.n_events == n_events
    if entry.name in N_ITEMS:
        assert ds.n_items == N_ITEMS[entry.name]
    if entry.name in PREDICTIONS:
        assert len(ds.targets["test"]) == PREDICTIONS[entry.name]


def test_diginetica_first_test_rows_match_the_published_file() -> None:
    ds = load_dataset("diginetica")
    test, targets = ds.part("test"), ds.targets["test"]
    # First published row: prefix "21553 20071 8762 21566 6381", target 21566.
    assert ds.items.ids[test.items[targets[0]]] == 21566
    prefix = test.items[test.offsets[0] : targets[0]]
    assert ds.items.ids[prefix].tolist() == [21553, 20071, 8762, 21566, 6381]


def test_ml100k_folds_partition_the_ratings() -> None:
    ds = load_dataset("ml-100k")
    tests = sum(ds.part(f"u{k}.test").n_events for k in range(1, 6))
    assert tests == 100_000
    base, test = ds.fold("u1")
    assert base.n_events + test.n_events == 100_000
    # categories: first listed genre; Toy Story (id 1) is Animation|Children's|Comedy
    assert ds.items.category_names[ds.items.categories[0]] == "Animation"


def test_ml1m_timestamped_rows_are_time_ordered() -> None:
    ts = load_dataset("ml-1m").part("timestamped")
    same_user = np.diff(ts.session_of_event()) == 0
    assert (np.diff(ts.times)[same_user] >= 0).all()
    assert (ts.lengths[3000:] == 0).all()  # users 3000+ have no timestamps in the shared copy


def test_raw_logs_carry_categories() -> None:
    ds = load_dataset("diginetica-raw-sample")
    assert ds.items.categories is not None and (ds.items.categories >= 0).all()
    assert ds.part("test").n_sessions > 0
    trivago = load_dataset("trivago-100k")
    assert trivago.part("train").times is not None
