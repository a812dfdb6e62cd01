"""Extra negative samples drawn from a precomputed store (official ``SampleCache``).

Items are drawn with probability proportional to support^``sample_alpha``
(alpha = 1: popularity, 0: uniform over the training items). Drawing one
small sample per step is slow, so the store draws ``store_size`` ids at once
(one inverse-CDF search over a single tensor) and hands out ``n_sample`` rows
of it, refilling when it runs out.
"""

from __future__ import annotations

import numpy as np
import torch


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
        self.n_sample = n_sample
        self.rows = max(store_size // max(n_sample, 1), 1)
        self.generator = generator
        self.pointer = self.rows
        self.store = torch.empty((0, n_sample), dtype=torch.int64)
        self.refills = 0

    def refill(self) -> None:
        u = torch.rand(self.rows * self.n_sample, dtype=torch.float64, generator=self.generator)
        ids = torch.searchsorted(self.cdf, u, right=True).clamp_(max=len(self.cdf) - 1)
        self.store = ids.view(self.rows, self.n_sample)
        self.pointer = 0
        self.refills += 1

    def next(self) -> torch.Tensor:
        """The next ``n_sample`` item rows (int64)."""
        if self.pointer >= self.rows:
            self.refill()
        sample = self.store[self.pointer]
        self.pointer += 1
        return sample
