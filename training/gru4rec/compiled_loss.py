"""The sampled loss, compiled once for the full mini-batch shape.

Why: on the CPU the loss over the [B, B + n_sample] score matrix is some twenty
elementwise passes (softmax, sigmoid, log, the activation and their backward),
a large share of a GRU4Rec step in eager mode, each pass reading and writing
the whole matrix and several of them bound by ``exp``. ``torch.compile`` fuses
them into a few vectorised loops, which cost much less. The score matrix of a
full step always has the same shape, so one static graph serves every step;
the short steps of an epoch's tail (and everything, if compiling fails, e.g.
no C++ compiler) use the eager function, which computes the same values.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import torch


class LossFn(Protocol):
    def __call__(self, scores: torch.Tensor, log_q: torch.Tensor | None) -> torch.Tensor: ...


class CompiledLoss:
    """``loss(scores, log_q)``: the compiled graph for ``shape``, the eager ``fn`` otherwise."""

    def __init__(
        self, fn: LossFn, shape: tuple[int, int], device: torch.device, with_log_q: bool
    ) -> None:
        self.fn, self.shape, self.with_log_q = fn, shape, with_log_q
        self.compiled: Callable[..., torch.Tensor] | None = None
        try:
            compiled = torch.compile(fn, dynamic=False, fullgraph=True)
            self._warm_up(compiled, device)
            self.compiled = compiled
        except Exception as exc:  # compiling is an optimisation: never a reason to stop training
            warnings.warn(
                f"the loss could not be compiled ({type(exc).__name__}: {exc}); "
                "training goes on with the eager loss",
                RuntimeWarning,
                stacklevel=2,
            )

    def _warm_up(self, compiled: Callable[..., torch.Tensor], device: torch.device) -> None:
        """Compile now (forward and backward), so the time lands in set-up, not in epoch 1."""
        scores = torch.randn(self.shape, device=device, requires_grad=True)
        log_q = torch.zeros(self.shape[1], device=device) if self.with_log_q else None
        with warnings.catch_warnings():  # the compiler's own deprecation notices, not ours
            warnings.simplefilter("ignore", FutureWarning)
            compiled(scores, log_q).backward()

    def __call__(self, scores: torch.Tensor, log_q: torch.Tensor | None) -> torch.Tensor:
        if self.compiled is not None and tuple(scores.shape) == self.shape:
            return self.compiled(scores, log_q)
        return self.fn(scores, log_q)
