"""Sequence augmentations of CL4SRec (Xie et al., ICDE 2022), vectorised over a batch.

Every function takes right-aligned windows [B, W] of item rows (``-1`` =
padding, real items at the right end, as the training batches hold them) and a
``torch.Generator``, and returns new right-aligned windows of the same width;
no Python loop runs per sequence.

- ``crop``: a random contiguous run of ``ceil(eta * n)`` of a row's n items;
- ``mask``: ``floor(gamma * n)`` of its items, at random, replaced by the mask token;
- ``reorder``: a random contiguous run of ``floor(beta * n)`` items shuffled in place.

A row of one item comes back unchanged by ``reorder`` and ``mask`` rounds its count
down, so short rows stay recognisable, as in the reference code.
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
    real = windows >= 0
    count = torch.floor(gamma * _lengths(windows).double()).long()
    # random keys, padding last: the `count` smallest keys of a row are its masked items
    keys = torch.rand(windows.shape, generator=generator).to(windows.device)
    keys = torch.where(real, keys, torch.full_like(keys, 2.0))
    rank = keys.argsort(1).argsort(1)
    hide = real & (rank < count[:, None])
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
