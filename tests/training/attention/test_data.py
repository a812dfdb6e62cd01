"""The attention models' data: leave-one-out by hand, the session form, the training windows."""

from __future__ import annotations

import numpy as np
import pytest

from training.attention.data import (
    TrainingBatches,
    leave_one_out,
    next_item,
    prepare,
    task_histories,
    windows,
)
from training.data.errors import DataError
from training.data.sessions import Dataset, ItemTable, Sessions
from training.evaluation.next_item import NextItemTask


def _sessions(rows: list[list[int]]) -> Sessions:
    lengths = [len(r) for r in rows]
    return Sessions(
        items=np.array([i for r in rows for i in r], dtype=np.int32),
        offsets=np.r_[0, np.cumsum(lengths)].astype(np.int64),
    )


def _rows(s: Sessions) -> list[list[int]]:
    return [s.session(i).tolist() for i in range(s.n_sessions)]


def _sequences(rows: list[list[int]], n_items: int = 8) -> Dataset:
    return Dataset("toy", "sequence", ItemTable(np.arange(n_items) + 100), {"all": _sessions(rows)})


def test_leave_one_out_by_hand() -> None:
    data = leave_one_out(_sequences([[1, 2, 3, 4, 5], [6, 7], [0, 3, 3]]))
    # the user of two items is left out; the others: train = all but the last two
    assert _rows(data.train) == [[1, 2, 3], [0]]
    assert _rows(data.valid.history) == [[1, 2, 3], [0]]
    assert data.valid.targets.tolist() == [4, 3]
    assert _rows(data.test.history) == [[1, 2, 3, 4], [0, 3]]
    assert data.test.targets.tolist() == [5, 3]
    assert data.popularity.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]  # training events only
    assert data.remove_seen and data.summary["users"] == 2
    assert data.item_ids.tolist() == list(range(100, 108))


def test_leave_one_out_needs_three_items() -> None:
    with pytest.raises(DataError, match="three items"):
        leave_one_out(_sequences([[1, 2], [3]]))


def test_task_histories_are_the_prefixes_before_each_target() -> None:
    task = NextItemTask.from_sessions(_sessions([[1, 2, 3], [4, 5]]))
    h = task_histories(task)
    assert _rows(h.history) == [[1], [1, 2], [4]]
    assert h.targets.tolist() == [2, 3, 5]


def test_next_item_holds_out_sessions_for_validation() -> None:
    train = _sessions([[i % 7, (i + 1) % 7, (i + 2) % 7] for i in range(200)] + [[5]])
    test = _sessions([[1, 2, 3]])
    ds = Dataset("s", "session", ItemTable(np.arange(7)), {"train": train, "test": test})
    data = next_item(ds, seed=3)
    assert data.train.n_sessions + data.summary["valid_sessions"] == 200  # the 1-click one goes
    assert 0 < data.summary["valid_sessions"] < 60
    assert len(data.valid) == 2 * data.summary["valid_sessions"]
    assert data.test.targets.tolist() == [2, 3] and not data.remove_seen
    assert prepare(ds, seed=3).summary == data.summary


def test_prepare_refuses_rating_data() -> None:
    ds = Dataset("r", "rating", ItemTable(np.arange(3)), {"u1.base": _sessions([[1, 2]])})
    with pytest.raises(DataError, match="rating"):
        prepare(ds)


def test_windows_are_the_last_items_left_padded() -> None:
    s = _sessions([[1, 2, 3, 4], [5]])
    assert windows(s, np.array([0, 1]), 3).tolist() == [[2, 3, 4], [-1, -1, 5]]


@pytest.mark.parametrize("group", [0, 2])
def test_an_epoch_visits_every_sequence_once_as_input_and_next_items(group: int) -> None:
    rows = [[i, i + 1, i + 2][: 1 + i % 3] for i in range(40)]
    seqs = _sessions(rows)
    batches = TrainingBatches(seqs, max_len=2, seed=0, group=group).epoch(batch_size=4)
    seen = []
    for inputs, targets in batches:
        assert inputs.shape == targets.shape and inputs.shape[1] <= 2
        assert (inputs[:, 1:] == targets[:, :-1]).all()  # targets are the inputs shifted by one
        for x, y in zip(inputs, targets, strict=True):
            seen.append([*x[x >= 0].tolist(), int(y[-1])])
    expected = [r for r in rows if len(r) >= 2]
    assert sorted(seen) == sorted(expected)


def test_grouped_batches_hold_sequences_of_similar_length() -> None:
    rows = [[1] * (2 + i % 10) for i in range(400)]
    lengths = lambda bs: [int((x >= 0).sum(1).max() - (x >= 0).sum(1).min()) for x, _ in bs]  # noqa: E731
    plain = TrainingBatches(_sessions(rows), max_len=20, seed=0).epoch(16)
    grouped = TrainingBatches(_sessions(rows), max_len=20, seed=0, group=25).epoch(16)
    assert max(lengths(grouped)) <= 1 < min(lengths(plain))
