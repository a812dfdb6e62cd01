"""The matrix-product ceiling of a GRU4Rec training step on this machine.

Part of the GRU4Rec speed benchmark: ``python -m tests.bench.gru4rec_speed``
prints it unless given ``--no-ceiling``.

Why: with wide layers a step is a handful of float32 matrix products (the
GRU's gates and the sampled output, forward and backward) plus elementwise
work around them. Timing those products alone, with the same shapes, on the
same machine and threads, bounds what ANY implementation of the same
arithmetic can reach: a step cannot take less than its products. The bench
prints this ceiling next to the measured rate, so a speed claim or target
(say, "2x the official code") can be checked against what the hardware
allows before anyone chases it.

The shapes count the output as the mini-batch's targets plus ``n_sample``
negatives (``B + n_sample`` columns), as the published algorithm and the
official code compute it; nextitem scores each distinct item once, so its own
output products are a little narrower when the sample repeats items.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from training.gru4rec.params import GRU4RecParams


@dataclass(frozen=True)
class Gemm:
    """One matrix product ``[m, k] @ [k, n]`` of a step, and what it computes."""

    m: int
    k: int
    n: int
    what: str

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


def step_gemms(p: GRU4RecParams) -> list[Gemm]:
    """The matrix products of one full mini-batch step, forward and backward.

    The carried hidden state is detached (one-step back-propagation), so no
    product computes a gradient for the previous state; the first layer's
    input does get one (embedding rows, or the one-hot layer's output).
    """
    b, d = p.batch_size, p.layers[-1]
    gemms: list[Gemm] = []
    cells = list(enumerate(p.layers))
    if not p.constrained_embedding and not p.embedding:
        h = p.layers[0]  # one-hot layer: the input product is a row lookup
        gemms += [
            Gemm(b, h, 2 * h, "layer 1 hidden r/z gates"),
            Gemm(b, h, h, "layer 1 hidden candidate"),
            Gemm(2 * h, b, h, "layer 1 grad W_rz"),
            Gemm(h, b, h, "layer 1 grad W_h"),
            Gemm(b, h, h, "layer 1 grad r*h"),
        ]
        cells = cells[1:]
    for i, h in cells:
        n_in = p.layers[i - 1] if i else (d if p.constrained_embedding else p.embedding)
        name = f"layer {i + 1}"
        gemms += [
            Gemm(b, n_in, 3 * h, f"{name} input gates"),
            Gemm(b, h, 3 * h, f"{name} hidden gates"),
            Gemm(3 * h, b, n_in, f"{name} grad W_ih"),
            Gemm(b, 3 * h, n_in, f"{name} grad input"),
            Gemm(3 * h, b, h, f"{name} grad W_hh"),
        ]
    n_out = b + p.n_sample
    gemms += [
        Gemm(b, d, n_out, "output scores"),
        Gemm(b, n_out, d, "output grad hidden"),
        Gemm(n_out, b, d, "output grad item rows"),
    ]
    return gemms


def time_gemms(gemms: list[Gemm], repeats: int = 30) -> float:
    """Seconds for one step's products: per shape the median of ``repeats`` timed runs."""
    total = 0.0
    for g in gemms:
        a, bm = torch.randn(g.m, g.k), torch.randn(g.k, g.n)
        out = torch.empty(g.m, g.n)
        for _ in range(3):
            torch.mm(a, bm, out=out)
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, bm, out=out)
            runs.append(time.perf_counter() - t0)
        total += sorted(runs)[len(runs) // 2]
    return total


@dataclass(frozen=True)
class Ceiling:
    """The step's products timed alone: a bound on any implementation's events/s."""

    flops_per_event: float
    gemm_seconds_per_step: float
    batch_size: int

    @property
    def events_per_second(self) -> float:
        return self.batch_size / self.gemm_seconds_per_step

    @property
    def gflops(self) -> float:
        """The rate the products themselves ran at (GFLOP/s)."""
        return self.flops_per_event * self.batch_size / self.gemm_seconds_per_step / 1e9

    def share(self, events_per_second: float) -> float:
        """How much of the ceiling a measured rate is."""
        return events_per_second / self.events_per_second


def measure_ceiling(p: GRU4RecParams, repeats: int = 30) -> Ceiling:
    gemms = step_gemms(p)
    flops = 2.0 * sum(g.macs for g in gemms)
    return Ceiling(
        flops_per_event=flops / p.batch_size,
        gemm_seconds_per_step=time_gemms(gemms, repeats),
        batch_size=p.batch_size,
    )
