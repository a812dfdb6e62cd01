"""CL4SRec's augmentations: what each keeps of a sequence, checked on random batches."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.augment import crop, mask, random_augment, reorder
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
