"""One-pass CPU kernels for GRU4Rec's Adagrad with momentum (numba).

Why: in eager PyTorch a row-wise update of the item tables costs a dozen passes
over the touched rows (gather the accumulator and the velocity, update them,
scatter both back, add to the table) and the dense update half as many over the
GRU weights. At [512] that was a sixth of a training step. Here each element
is read once and written once, by all threads (rows or elements split between
them), with the same float32 arithmetic in the same order; only the rounding of
``momentum * v - lr * step`` may differ from the eager version's fused
multiply-add in the last bit.

The kernels work in place on numpy views of CPU tensors. ``rows`` must be
distinct (the threads write different rows); the optimizer guarantees it.

Threads and fork: numba's OpenMP layer ends a process forked from one that
already ran a parallel kernel, at its first kernel call. ``usable_here()``
says whether this process may run them; the optimizer falls back to PyTorch's
ops in such a child (a spawned process, a new interpreter, is not affected).
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

_owner_pid: int | None = None  # the process that runs the kernels (inherited by a fork)


def usable_here() -> bool:
    """True unless this process is a fork of one that ran (or was about to run) the kernels."""
    global _owner_pid
    if _owner_pid is None:
        _owner_pid = os.getpid()
    return _owner_pid == os.getpid()


@njit(inline="always")
def _adagrad(g, acc, lr, eps):  # type: ignore[no-untyped-def]
    """The one rule every kernel applies: (new accumulator, ``lr * g / sqrt(acc + eps)``)."""
    a = acc + g * g
    return a, lr * (g / np.sqrt(a + eps))


@njit(parallel=True, cache=True, boundscheck=False)
def rows_adagrad_momentum(table, acc, mom, rows, grad, lr, momentum, eps):  # type: ignore[no-untyped-def]
    """``acc += g^2; v = momentum * v - lr * g / sqrt(acc + eps); table += v`` on ``rows``."""
    for i in prange(rows.shape[0]):
        r = rows[i]
        for j in range(table.shape[1]):
            acc[r, j], step = _adagrad(grad[i, j], acc[r, j], lr, eps)
            v = momentum * mom[r, j] - step
            mom[r, j] = v
            table[r, j] += v


@njit(parallel=True, cache=True, boundscheck=False)
def rows_adagrad(table, acc, rows, grad, lr, eps):  # type: ignore[no-untyped-def]
    """Plain Adagrad on ``rows``: ``acc += g^2; table -= lr * g / sqrt(acc + eps)``."""
    for i in prange(rows.shape[0]):
        r = rows[i]
        for j in range(table.shape[1]):
            acc[r, j], step = _adagrad(grad[i, j], acc[r, j], lr, eps)
            table[r, j] -= step


@njit(parallel=True, cache=True, boundscheck=False)
def dense_adagrad_momentum(param, acc, mom, grad, lr, momentum, eps):  # type: ignore[no-untyped-def]
    """The row kernel's update on flat (1-D) arrays: every element is touched."""
    for i in prange(param.shape[0]):
        acc[i], step = _adagrad(grad[i], acc[i], lr, eps)
        v = momentum * mom[i] - step
        mom[i] = v
        param[i] += v


@njit(parallel=True, cache=True, boundscheck=False)
def dense_adagrad(param, acc, grad, lr, eps):  # type: ignore[no-untyped-def]
    """Plain Adagrad on flat (1-D) arrays."""
    for i in prange(param.shape[0]):
        acc[i], step = _adagrad(grad[i], acc[i], lr, eps)
        param[i] -= step
