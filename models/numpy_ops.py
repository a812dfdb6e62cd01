"""The transformer pieces in numpy, for one visit's query on the service's hot path.

For one window of at most L items torch spends far longer dispatching its
operators (about 0.6 ms for one SASRec block) than numpy computing them; the
attention models' ``interests`` run these instead, on numpy views of their own
parameters, and the contract suite holds them equal to the torch forward.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    scale = 1.0 / x.shape[-1]  # np.mean's own bookkeeping costs more than the sums here
    centred = x - np.add.reduce(x, -1, keepdims=True) * scale
    var = np.add.reduce(centred * centred, -1, keepdims=True) * scale
    return centred / np.sqrt(var + eps) * weight + bias


def transposed(weight: np.ndarray) -> np.ndarray:
    """A linear layer's weight [out, in] as the C-contiguous [in, out] its matmuls want.

    ``x @ weight.T`` on the transposed view runs OpenBLAS's general kernel, which
    for the few rows of one visit is several times slower than ``x @ transposed``.
    """
    return np.ascontiguousarray(weight.T)


def attention(
    queries: np.ndarray,
    keys: np.ndarray,
    in_weight_t: np.ndarray,
    in_bias: np.ndarray,
    out_weight_t: np.ndarray,
    out_bias: np.ndarray,
    heads: int,
    causal: bool,
) -> np.ndarray:
    """``nn.MultiheadAttention`` of the last ``len(queries)`` positions over all ``keys``.

    Queries [m, d] are the last m of the n key positions [n, d]; with ``causal``
    query i sees keys up to its own position. The weights come ``transposed``:
    ``in_weight_t`` [d, 3d] (query, key, value maps side by side), ``out_weight_t`` [d, d].
    """
    m, n, d = len(queries), len(keys), keys.shape[1]
    q = queries @ in_weight_t[:, :d] + in_bias[:d]
    kv = keys @ in_weight_t[:, d:] + in_bias[d:]  # keys and values in one product
    k, v = kv[:, :d], kv[:, d:]
    h = d // heads
    q = q.reshape(m, heads, h).transpose(1, 0, 2)
    k = k.reshape(n, heads, h).transpose(1, 0, 2)
    v = v.reshape(n, heads, h).transpose(1, 0, 2)
    logits = q @ k.transpose(0, 2, 1) / np.sqrt(h)  # [heads, m, n]
    if causal and m > 1:
        later = np.arange(n)[None, :] > (n - m + np.arange(m))[:, None]
        logits = np.where(later[None], -np.inf, logits)
    logits -= logits.max(-1, keepdims=True)
    weights = np.exp(logits)
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(1, 0, 2).reshape(m, d)
    return out @ out_weight_t + out_bias


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU (``F.gelu``'s default), not the tanh approximation."""
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / np.sqrt(2))))
