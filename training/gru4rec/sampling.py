"""Extra negative samples drawn from a precomputed store (official ``SampleCache``).

Items are drawn with probability proportional to support^``sample_alpha``
(alpha = 1: popularity, 0: uniform over the training items). Drawing one
small sample per step is slow, so the store draws ``store_size`` ids at once
(one inverse-CDF search over a single tensor) and hands out ``n_sample`` rows
of it, refilling when it runs out.

The inverse-CDF search is guided (Chen & Asau's index table): a uniform ``u``
first falls into one of ``M`` equal buckets (``M`` a power of two, so the
bucket is exact in float64), and the table holds the answer for each bucket's
two edges. Where they agree, which is most buckets, that is the answer; only
the rest go through the binary search. Same ids as a plain search of every
draw, and several times faster: a binary search over a large catalog's CDF
misses the cache at every level, and the refill of the sample store is a
visible part of a small model's epoch.
"""

from __future__ import annotations

import numpy as np
import torch

GUIDE_PER_ITEM = 8  # buckets per item: at most 1/8 of the draws need the binary search
GUIDE_MAX_BITS = 24


def sampling_weights(support: np.ndarray, alpha: float) -> np.ndarray:
    """support^alpha; items never seen in training are never drawn."""
    support = np.asarray(support, dtype=np.float64)
    out = np.zeros_like(support)
    np.power(support, alpha, out=out, where=support > 0)
    return out


class SampleStore:
    def __init__(
        self,
        support: np.ndarray,
        n_sample: int,
        alpha: float,
        store_size: int = 10_000_000,
        generator: torch.Generator | None = None,
    ) -> None:
        weights = sampling_weights(support, alpha)
        if weights.sum() <= 0:
            raise ValueError("no item has training support: nothing to sample from")
        cdf = np.cumsum(weights) / weights.sum()
        cdf[-1] = 1.0
        self.cdf = torch.from_numpy(cdf)
        self.guide_bits, self.guide = guide_table(self.cdf)
        self.n_sample = n_sample
        self.rows = max(store_size // max(n_sample, 1), 1)
        self.generator = generator
        self.pointer = self.rows
        self.store = torch.empty((0, n_sample), dtype=torch.int64)
        self.refills = 0

    def refill(self) -> None:
        u = torch.rand(self.rows * self.n_sample, dtype=torch.float64, generator=self.generator)
        ids = guided_search(self.cdf, self.guide, self.guide_bits, u)
        self.store = ids.clamp_(max=len(self.cdf) - 1).long().view(self.rows, self.n_sample)
        self.pointer = 0
        self.refills += 1

    def next(self) -> torch.Tensor:
        """The next ``n_sample`` item rows (int64)."""
        if self.pointer >= self.rows:
            self.refill()
        sample = self.store[self.pointer]
        self.pointer += 1
        return sample


def guide_table(cdf: torch.Tensor) -> tuple[int, torch.Tensor]:
    """(bits, table): ``table[j]`` is the search answer for ``u = j / 2**bits``."""
    bits = min(max(int(np.ceil(np.log2(GUIDE_PER_ITEM * len(cdf)))), 1), GUIDE_MAX_BITS)
    edges = torch.arange((1 << bits) + 1, dtype=torch.float64) / (1 << bits)
    return bits, torch.searchsorted(cdf, edges, right=True, out_int32=True)


def guided_search(
    cdf: torch.Tensor, guide: torch.Tensor, bits: int, u: torch.Tensor
) -> torch.Tensor:
    """``searchsorted(cdf, u, right=True)`` (int32) for ``u`` in [0, 1), by the guide table.

    The answer is monotone in ``u`` and ``j / 2**bits <= u < (j + 1) / 2**bits``
    holds exactly for ``j = floor(u * 2**bits)``, so equal answers at the two
    edges are the answer for every ``u`` in the bucket.
    """
    bucket = (u * (1 << bits)).long()
    low = guide.index_select(0, bucket)
    high = guide.index_select(0, bucket.add_(1))
    unsure = (low != high).nonzero().view(-1)
    found = torch.searchsorted(cdf, u.index_select(0, unsure), right=True, out_int32=True)
    return low.index_copy_(0, unsure, found)
