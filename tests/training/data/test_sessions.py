"""The normalised in-memory form: Sessions slicing, filtering, grouping, CSR view."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.data.sessions import ItemTable, Sessions


def make(rows: list[list[int]], **kw: object) -> Sessions:
    lengths = [len(r) for r in rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = np.array([i for r in rows for i in r], dtype=np.int32)
    return Sessions(items=items, offsets=offsets, **kw)


def rows_of(s: Sessions) -> list[list[int]]:
    return [s.session(i).tolist() for i in range(s.n_sessions)]


def test_select_reorders_rows_and_carries_columns() -> None:
    s = make([[1, 2], [3], [4, 5, 6]], times=np.arange(6.0), keys=np.array(["a", "b", "c"]))
    out = s.select(np.array([2, 0]))
    assert rows_of(out) == [[4, 5, 6], [1, 2]]
    assert out.times.tolist() == [3.0, 4.0, 5.0, 0.0, 1.0]
    assert out.keys.tolist() == ["c", "a"]


def test_filter_events_keeps_empty_rows_in_place() -> None:
    s = make([[1, 2], [3], [4, 5, 6]])
    out = s.filter_events(np.array([True, False, False, True, False, True]))
    assert rows_of(out) == [[1], [], [4, 6]]


def test_remap_items_drops_unmapped() -> None:
    s = make([[0, 1, 2], [2, 2]])
    out = s.remap_items(np.array([5, -1, 7]))
    assert rows_of(out) == [[5, 7], [7, 7]]


def test_from_groups_orders_rows_by_first_time_and_events_by_time() -> None:
    group = np.array(["x", "y", "x", "y", "z"])
    items = np.array([10, 20, 11, 21, 30])
    times = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    s = Sessions.from_groups(group, items, times=times, order=times)
    assert s.keys.tolist() == ["y", "z", "x"]
    assert rows_of(s) == [[20, 21], [30], [11, 10]]


def test_constructor_rejects_bad_layout() -> None:
    with pytest.raises(TypeError):
        Sessions(items=np.array([1], dtype=np.int64), offsets=np.array([0, 1]))
    with pytest.raises(ValueError):
        Sessions(items=np.array([1, 2], dtype=np.int32), offsets=np.array([0, 1], dtype=np.int64))


def test_item_table_index_of_handles_unknown_and_strings() -> None:
    t = ItemTable(ids=np.array(["b", "a", "c"], dtype=object))
    assert t.index_of(np.array(["c", "a", "zz"], dtype=object)).tolist() == [2, 1, -1]
    t2 = ItemTable(ids=np.array([30, 10, 20]))
    assert t2.index_of(np.array([10, 20, 99])).tolist() == [1, 2, -1]


session_lists = st.lists(st.lists(st.integers(0, 9), max_size=6), max_size=8)


@given(session_lists, st.data())
def test_select_matches_python_slicing(rows: list[list[int]], data: st.DataObject) -> None:
    s = make(rows)
    idx = data.draw(st.lists(st.integers(0, max(len(rows) - 1, 0)), max_size=10)) if rows else []
    out = s.select(np.array(idx, dtype=np.int64))
    assert rows_of(out) == [rows[i] for i in idx]


@given(session_lists, st.data())
def test_filter_events_matches_python(rows: list[list[int]], data: st.DataObject) -> None:
    s = make(rows)
    keep = np.array(
        data.draw(st.lists(st.booleans(), min_size=s.n_events, max_size=s.n_events)), bool
    )
    out = s.filter_events(keep)
    flat_keep = iter(keep.tolist())
    expected = [[i for i in r if next(flat_keep)] for r in rows]
    assert rows_of(out) == expected
