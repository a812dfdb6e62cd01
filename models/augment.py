"""Sequence augmentations of CL4SRec (Xie et al., ICDE 2022) and CoSeRec (Liu et al.,
2021), vectorised over a batch.

Every function takes right-aligned windows [B, W] of item rows (``-1`` =
padding, real items at the right end, as the training batches hold them) and a
``torch.Generator``, and returns new right-aligned windows of the same width;
no Python loop runs per sequence.

- ``crop``: a random contiguous run of ``ceil(eta * n)`` of a row's n items;
- ``mask``: ``floor(gamma * n)`` of its items, at random, replaced by the mask token;
- ``reorder``: a random contiguous run of ``floor(beta * n)`` items shuffled in place;
- ``insert`` (CoSeRec): before each of ``max(floor(rate * n), 1)`` random items, its most
  similar item; the row grows by that many, its oldest items falling off the left of W;
- ``substitute`` (CoSeRec): ``max(floor(rate * n), 1)`` random items replaced by their
  most similar items.

A row of one item comes back unchanged by ``reorder`` and ``mask`` rounds its count
down, so short rows stay recognisable, as in the reference code; insert and
substitute change at least one item of every non-empty row, as CoSeRec's code
does. ``similar`` (item row -> its most similar other item row) comes from
``models.item_similarity``.
"""

from __future__ import annotations

import torch


def _lengths(windows: torch.Tensor) -> torch.Tensor:
    return (windows >= 0).sum(1)


def _uniform_int(high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One integer in [0, high] per row (``high`` >= 0)."""
    high = high.clamp(min=0)
    draw = torch.rand(high.shape, generator=generator, dtype=torch.float64).to(high.device)
    return torch.minimum((draw * (high + 1)).long(), high)


def _pick(windows: torch.Tensor, count: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random ``count`` of each row's items, uniformly without replacement (bool [B, W])."""
    real = windows >= 0
    # random keys, padding last: the `count` smallest keys of a row are its picked items
    keys = torch.rand(windows.shape, generator=generator).to(windows.device)
    keys = torch.where(real, keys, torch.full_like(keys, 2.0))
    rank = keys.argsort(1).argsort(1)
    return real & (rank < count[:, None])


def _at_least_one(rate: float, windows: torch.Tensor) -> torch.Tensor:
    """CoSeRec's count, ``max(int(rate * n), 1)``, and none for an empty row."""
    n = _lengths(windows)
    return torch.minimum(torch.floor(rate * n.double()).long().clamp(min=1), n)


def crop(windows: torch.Tensor, eta: float, generator: torch.Generator) -> torch.Tensor:
    W = windows.shape[1]
    n = _lengths(windows)
    keep = torch.clamp(torch.ceil(eta * n.double()).long(), min=1)
    keep = torch.minimum(keep, n.clamp(min=1))
    start = _uniform_int(n - keep, generator)  # in the row's own item order
    col = torch.arange(W, device=windows.device)[None]
    # output column j holds source item (start + j - (W - keep)) of the row's n items
    source = (W - n)[:, None] + start[:, None] + col - (W - keep)[:, None]
    inside = col >= (W - keep)[:, None]
    picked = windows.gather(1, source.clamp(0, W - 1))
    return torch.where(inside, picked, torch.full_like(windows, -1))


def mask(
    windows: torch.Tensor, gamma: float, mask_token: int, generator: torch.Generator
) -> torch.Tensor:
    count = torch.floor(gamma * _lengths(windows).double()).long()
    hide = _pick(windows, count, generator)
    return torch.where(hide, torch.full_like(windows, mask_token), windows)


def reorder(windows: torch.Tensor, beta: float, generator: torch.Generator) -> torch.Tensor:
    B, W = windows.shape
    n = _lengths(windows)
    span = torch.floor(beta * n.double()).long()
    start = (W - n) + _uniform_int(n - span, generator)  # a column
    col = torch.arange(W, device=windows.device)[None].expand(B, W)
    inside = (col >= start[:, None]) & (col < (start + span)[:, None])
    # sort keys: a column keeps its place outside the run; inside, a random place within it
    noise = torch.rand(windows.shape, generator=generator, dtype=torch.float64)
    noise = noise.to(windows.device)
    keys = torch.where(inside, start[:, None] + noise * span[:, None], col.double())
    return windows.gather(1, keys.argsort(1))


def insert(
    windows: torch.Tensor, rate: float, similar: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """CoSeRec's insert: the most similar item right before each of a random share of items.

    Each picked item becomes two (its similar item, then itself), so an item's
    output column is W - 1 minus what the items to its right grow to; a column
    below 0 falls off, as CoSeRec keeps the last ``max_len`` of the longer
    sequence. One item per picked position: the code's ``max_insert_num_per_pos``
    default of 1.
    """
    B, W = windows.shape
    real = windows >= 0
    picked = _pick(windows, _at_least_one(rate, windows), generator)
    grows = real.long() + picked.long()  # output items per input column: 0, 1 or 2
    to_the_right = grows.flip(1).cumsum(1).flip(1) - grows
    own = W - 1 - to_the_right
    before = own - 1
    # everything that has no place (padding, fallen off, not picked) goes to a spare column W
    own = torch.where(real & (own >= 0), own, W)
    before = torch.where(picked & (before >= 0), before, W)
    out = torch.full((B, W + 1), -1, dtype=windows.dtype, device=windows.device)
    out.scatter_(1, own, windows)
    out.scatter_(1, before, similar[windows.clamp(min=0)])
    return out[:, :W]


def substitute(
    windows: torch.Tensor, rate: float, similar: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """CoSeRec's substitute: a random share of a row's items replaced by their similar items."""
    picked = _pick(windows, _at_least_one(rate, windows), generator)
    return torch.where(picked, similar[windows.clamp(min=0)], windows)


def random_augment(
    windows: torch.Tensor,
    generator: torch.Generator,
    mask_token: int,
    eta: float,
    gamma: float,
    beta: float,
) -> torch.Tensor:
    """Each row through one of crop, mask and reorder, picked uniformly per row."""
    choice = torch.randint(3, (windows.shape[0],), generator=generator).to(windows.device)
    views = torch.stack(
        [
            crop(windows, eta, generator),
            mask(windows, gamma, mask_token, generator),
            reorder(windows, beta, generator),
        ]
    )
    return views[choice, torch.arange(windows.shape[0], device=windows.device)]


#: CoSeRec's augmentations in the order of its code; a short row picks among SHORT only
INSERT, SUBSTITUTE, CROP, MASK, REORDER = range(5)
SHORT = (INSERT, SUBSTITUTE, MASK)


def coserec_augment(
    windows: torch.Tensor,
    generator: torch.Generator,
    mask_token: int,
    similar: torch.Tensor,
    rates: tuple[float, float, float, float, float],
    short: int = -1,
) -> torch.Tensor:
    """Each row through one of CoSeRec's five augmentations, picked uniformly per row.

    ``rates`` are (eta, gamma, beta, insert rate, substitute rate). A row of at
    most ``short`` items picks among insert, substitute and mask only (the
    code's ``augment_threshold`` with its default short set, "SIM"); ``short =
    -1`` lets every row pick among all five, the code's ``augment_threshold =
    -1``.
    """
    eta, gamma, beta, insert_rate, substitute_rate = rates
    rows = torch.arange(windows.shape[0], device=windows.device)
    any_of_five = torch.randint(5, (len(rows),), generator=generator)
    of_short = torch.tensor(SHORT)[torch.randint(len(SHORT), (len(rows),), generator=generator)]
    is_short = (_lengths(windows) <= short).cpu()
    choice = torch.where(is_short, of_short, any_of_five).to(windows.device)
    views = torch.stack(
        [
            insert(windows, insert_rate, similar, generator),
            substitute(windows, substitute_rate, similar, generator),
            crop(windows, eta, generator),
            mask(windows, gamma, mask_token, generator),
            reorder(windows, beta, generator),
        ]
    )
    return views[choice, rows]
