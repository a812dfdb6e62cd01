"""Multi-interest protocol: user split, 80/20 hold-out, Recall/NDCG/HitRate/Diversity by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import needs_shared_data
from training.data import load_dataset
from training.data.errors import MalformedFile
from training.data.sessions import Sessions
from training.evaluation.multi_interest import (
    diversity,
    holdout,
    split_from_file,
    split_users,
    topn_metrics,
)
from training.paths import data_dir


def sessions(rows: list[list[int]]) -> Sessions:
    offsets = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    return Sessions(items=np.array([i for r in rows for i in r], np.int32), offsets=offsets)


TOPN = np.array([[1, 2, 3], [4, 5, 6]])
TARGETS = sessions([[2, 5], [6]])
CATEGORIES = np.array([9, 0, 0, 1, 2, 2, 2])  # items 1, 2: cat 0; 3: cat 1; 4, 5, 6: cat 2


def test_metrics_by_hand() -> None:
    m = topn_metrics(TOPN, TARGETS, CATEGORIES, ns=(3,))
    # user 0: one of two targets found (item 2, list rank 2); user 1: its one target at rank 3
    assert m["recall@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["hitrate@3"] == pytest.approx(1.0)
    ndcg0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    ndcg1 = (1 / math.log2(4)) / 1
    assert m["ndcg@3"] == pytest.approx((ndcg0 + ndcg1) / 2)
    # categories: user 0 [0, 0, 1] -> 2 of 3 pairs differ; user 1 all the same -> 0
    assert m["diversity@3"] == pytest.approx((2 / 3 + 0) / 2)


def test_comirec_ndcg_variant_discounts_by_target_position() -> None:
    m = topn_metrics(TOPN, TARGETS, None, ns=(3,), ndcg="comirec")
    # Both users' hits are their first target: dcg = 1 = idcg over one hit.
    assert m["ndcg@3"] == pytest.approx(1.0)
    assert "diversity@3" not in m


def test_repeated_targets_count_each_occurrence() -> None:
    m = topn_metrics(np.array([[7, 8]]), sessions([[7, 7, 9]]), None, ns=(2,))
    assert m["recall@2"] == pytest.approx(2 / 3)


def test_cutoffs_use_list_prefixes() -> None:
    m = topn_metrics(TOPN, TARGETS, None, ns=(1, 3))
    assert m["recall@1"] == 0.0 and m["hitrate@1"] == 0.0


@given(st.lists(st.lists(st.integers(0, 4), min_size=2, max_size=8), min_size=1, max_size=5))
def test_diversity_equals_pair_count(lists: list[list[int]]) -> None:
    n = min(len(x) for x in lists)
    arr = np.array([x[:n] for x in lists])
    expected = [
        sum(a[i] != a[j] for i in range(n) for j in range(i + 1, n)) / (n * (n - 1) / 2)
        for a in arr
    ]
    assert diversity(arr) == pytest.approx(expected)


def test_split_users_is_seeded_and_partitions() -> None:
    a, b = split_users(1000, seed=3), split_users(1000, seed=3)
    assert np.array_equal(a.test, b.test)
    assert (len(a.train), len(a.valid), len(a.test)) == (800, 100, 100)
    assert len(np.unique(np.r_[a.train, a.valid, a.test])) == 1000
    assert not np.array_equal(split_users(1000, seed=4).test, a.test)


def test_holdout_cuts_at_eighty_percent() -> None:
    seqs = sessions([[1, 2, 3, 4, 5], [6, 7], [8]])
    h = holdout(seqs, np.array([0, 1, 2]))
    # int(5 * 0.8) = 4 inputs; int(2 * 0.8) = 1; the one-item user has no target and is dropped
    assert [h.inputs.session(i).tolist() for i in range(2)] == [[1, 2, 3, 4], [6]]
    assert [h.targets.session(i).tolist() for i in range(2)] == [[5], [7]]


def test_split_file_errors(tmp_path) -> None:
    bad = tmp_path / "split.tsv"
    bad.write_text("user_id\tpart\n1\ttrain\n2\tholdout\n")
    with pytest.raises(MalformedFile, match="line 3"):
        split_from_file(bad, np.array([1, 2]))


@needs_shared_data
def test_comirec_split_file_on_ml1m() -> None:
    ds = load_dataset("ml-1m")
    seqs = ds.part("timestamped")
    has_events = seqs.lengths > 0
    split = split_from_file(
        data_dir() / "ml-1m" / "comirec_user_split_seed1230.tsv", seqs.keys[has_events]
    )
    assert (len(split.train), len(split.valid), len(split.test)) == (2399, 300, 300)
