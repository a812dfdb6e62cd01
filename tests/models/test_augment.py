"""CL4SRec's and CoSeRec's augmentations: what each keeps of a sequence, checked by hand and
on random batches."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.augment import coserec_augment, crop, insert, mask, random_augment, reorder, substitute
from models.cl4srec import nt_xent


def _batch(seed: int, rows: int = 12, width: int = 9) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(1, width + 1, (rows,), generator=g)
    items = torch.randint(0, 50, (rows, width), generator=g)
    col = torch.arange(width)[None]
    return torch.where(col >= width - n[:, None], items, -1)


def _items(row: torch.Tensor) -> list[int]:
    return row[row >= 0].tolist()


def _is_right_aligned(w: torch.Tensor) -> bool:
    real = (w >= 0).int()
    return bool((real[:, 1:] >= real[:, :-1]).all())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), eta=st.floats(0.05, 1.0))
def test_crop_keeps_a_contiguous_run_of_its_share(seed: int, eta: float) -> None:
    w = _batch(seed)
    out = crop(w, eta, torch.Generator().manual_seed(seed))
    assert out.shape == w.shape and _is_right_aligned(out)
    for before, after in zip(w, out, strict=True):
        src, got = _items(before), _items(after)
        assert len(got) == max(1, min(len(src), math.ceil(eta * len(src))))
        assert any(src[i : i + len(got)] == got for i in range(len(src) - len(got) + 1))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), gamma=st.floats(0.0, 1.0))
def test_mask_hides_its_share_and_nothing_else(seed: int, gamma: float) -> None:
    w = _batch(seed)
    out = mask(w, gamma, 99, torch.Generator().manual_seed(seed))
    assert ((out == -1) == (w == -1)).all()  # padding stays padding, items stay in place
    hidden = out == 99
    assert (out[~hidden] == w[~hidden]).all()
    n = (w >= 0).sum(1)
    assert hidden.sum(1).tolist() == [math.floor(gamma * k) for k in n.tolist()]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), beta=st.floats(0.0, 1.0))
def test_reorder_shuffles_one_run_in_place(seed: int, beta: float) -> None:
    w = _batch(seed)
    out = reorder(w, beta, torch.Generator().manual_seed(seed))
    assert ((out == -1) == (w == -1)).all()
    for before, after in zip(w, out, strict=True):
        src, got = _items(before), _items(after)
        assert sorted(src) == sorted(got)
        changed = [i for i in range(len(src)) if src[i] != got[i]]
        if changed:  # every change lies within one run of floor(beta * n) items
            assert changed[-1] - changed[0] < math.floor(beta * len(src))


def test_random_augment_applies_one_of_the_three_per_row() -> None:
    w = _batch(3, rows=200)
    out = random_augment(w, torch.Generator().manual_seed(0), 99, 0.5, 0.5, 0.5)
    masked = (out == 99).any(1)
    cropped = (out >= 0).sum(1) < (w >= 0).sum(1)
    assert masked.any() and cropped.any() and not (masked & cropped).any()


def test_nt_xent_by_hand() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # each view's pair is identical (cosine 1), the other two views orthogonal or opposite
    b = a.clone()
    logits = torch.tensor([1.0, 0.0, 0.0])  # positive 1, negatives 0 and 0 (temperature 1)
    expected = -torch.log_softmax(logits, 0)[0].item()
    assert nt_xent(a, b, 1.0).item() == pytest.approx(expected, rel=1e-6)


# -- CoSeRec's insert and substitute ----------------------------------------------------------

#: item i (< 50) -> the marker i + 100, so an output item says whether it was an input or not
MARKED = torch.cat([torch.arange(50) + 100, torch.zeros(100, dtype=torch.long)])
HAND = torch.tensor([[-1, -1, 1, 2, 3], [5, 6, 7, 8, 9], [-1, -1, -1, -1, -1], [-1, -1, -1, -1, 4]])


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_insert_at_rate_one_puts_each_similar_item_before_its_item_by_hand() -> None:
    out = insert(HAND, 1.0, MARKED, _gen())
    expected = [
        [1, 102, 2, 103, 3],  # 101 1 102 2 103 3, the oldest falling off the left
        [7, 108, 8, 109, 9],
        [-1, -1, -1, -1, -1],  # an empty row stays empty
        [-1, -1, -1, 104, 4],
    ]
    assert out.tolist() == expected


def test_substitute_at_rate_one_replaces_every_item_by_hand() -> None:
    out = substitute(HAND, 1.0, MARKED, _gen())
    expected = [[-1, -1, 101, 102, 103], [105, 106, 107, 108, 109], [-1] * 5, [-1, -1, -1, -1, 104]]
    assert out.tolist() == expected


def test_insert_and_substitute_pick_the_same_items_from_the_same_generator() -> None:
    """At rate 0.4 a row of 5 changes int(0.4 * 5) = 2 items, a row of 3 or 1 one (at least
    one, as CoSeRec's code): substitute shows which, insert puts markers right before them."""
    replaced = substitute(HAND, 0.4, MARKED, _gen(7))
    grown = insert(HAND, 0.4, MARKED, _gen(7))
    assert (replaced >= 100).sum(1).tolist() == [1, 2, 0, 1]
    for row, sub, ins in zip(HAND.tolist(), replaced.tolist(), grown.tolist(), strict=True):
        expanded = []
        for item, new in zip(row, sub, strict=True):
            expanded += [item + 100, item] if new >= 100 else [item] if item >= 0 else []
        assert ins == ([-1] * 5 + expanded)[-5:]


def test_rate_zero_still_changes_one_item_of_each_row() -> None:
    w = _batch(2)
    n = (w >= 0).sum(1)
    assert ((substitute(w, 0.0, MARKED, _gen()) >= 100).sum(1) == 1).all()
    assert ((insert(w, 0.0, MARKED, _gen()) >= 0).sum(1) == torch.clamp(n + 1, max=9)).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rate=st.floats(0.0, 1.0))
def test_insert_grows_each_row_by_its_share_and_keeps_its_order(seed: int, rate: float) -> None:
    w = _batch(seed)
    out = insert(w, rate, MARKED, _gen(seed))
    assert out.shape == w.shape and _is_right_aligned(out)
    for before, after in zip(w, out, strict=True):
        src, got = _items(before), _items(after)
        count = max(1, math.floor(rate * len(src)))
        assert len(got) == min(w.shape[1], len(src) + count)
        kept = [x for x in got if x < 100]
        assert kept == src[len(src) - len(kept) :]  # the newest inputs, in order
        for at, x in enumerate(got):  # each marker sits right before the item it came from
            if x >= 100:
                assert got[at + 1] == x - 100
        if len(src) + count <= w.shape[1]:
            assert len(got) - len(kept) == count


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rate=st.floats(0.0, 1.0))
def test_substitute_replaces_its_share_in_place(seed: int, rate: float) -> None:
    w = _batch(seed)
    out = substitute(w, rate, MARKED, _gen(seed))
    assert ((out == -1) == (w == -1)).all()  # the length and the padding stay
    changed = out != w
    assert (out[changed] == MARKED[w[changed]]).all()
    n = (w >= 0).sum(1)
    assert changed.sum(1).tolist() == [max(1, math.floor(rate * k)) for k in n.tolist()]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), rate=st.floats(0.0, 1.0))
def test_every_new_item_is_an_input_or_the_similar_item_of_one(seed: int, rate: float) -> None:
    similar = torch.randint(0, 50, (50,), generator=_gen(seed))
    w = _batch(seed)
    for out in (insert(w, rate, similar, _gen(seed)), substitute(w, rate, similar, _gen(seed))):
        assert out.shape == w.shape and _is_right_aligned(out)
        for before, after in zip(w, out, strict=True):
            src = _items(before)
            allowed = set(src) | {int(similar[x]) for x in src}
            assert set(_items(after)) <= allowed


def test_coserec_augment_keeps_crop_and_reorder_from_short_rows() -> None:
    """Rows of at most 4 items pick among insert, substitute and mask, as CoSeRec's
    augment_threshold; longer rows among all five (crop 0.5, mask 0.5, reorder 1)."""
    w = _batch(3, rows=300)
    rates = (0.5, 0.5, 1.0, 0.4, 0.1)
    out = coserec_augment(w, _gen(), 99, MARKED, rates, short=4)
    n, m = (w >= 0).sum(1), (out >= 0).sum(1)
    in_place = ((out == w) | (out == MARKED[w.clamp(min=0)])).all(1)
    substituted = (out >= 100).any(1) & in_place
    inserted = (out >= 100).any(1) & ~in_place
    masked, cropped = (out == 99).any(1), m < n
    reordered = (m == n) & ~(out >= 99).any(1) & (out != w).any(1)
    short = n <= 4
    assert not (short & (cropped | reordered)).any()
    for kind in (inserted, substituted, masked):
        assert (kind & short).any() and (kind & ~short).any()
    assert (cropped & ~short).any() and (reordered & ~short).any()
    every_row = coserec_augment(w, _gen(), 99, MARKED, rates, short=-1)
    assert ((every_row >= 0).sum(1) < n)[short].any()  # -1: short rows may be cropped too
    torch.testing.assert_close(coserec_augment(w, _gen(), 99, MARKED, rates, short=4), out)
