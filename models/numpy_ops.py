"""The transformer pieces in numpy, for one visit's query on the service's hot path.

For one window of at most L items torch spends far longer dispatching its
operators (about 0.6 ms for one SASRec block) than numpy computing them; the
attention models' ``interests`` run these instead, on numpy views of their own
parameters, and the contract suite holds them equal to the torch forward.
"""

from __future__ import annotations

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


def attention(
    queries: np.ndarray,
    keys: np.ndarray,
    in_weight: np.ndarray,
    in_bias: np.ndarray,
    out_weight: np.ndarray,
    out_bias: np.ndarray,
    heads: int,
    causal: bool,
) -> np.ndarray:
    """``nn.MultiheadAttention`` of the last ``len(queries)`` positions over all ``keys``.

    Queries [m, d] are the last m of the n key positions [n, d]; with ``causal``
    query i sees keys up to its own position.
    """
    m, n, d = len(queries), len(keys), keys.shape[1]
    q = queries @ in_weight[:d].T + in_bias[:d]
    k = keys @ in_weight[d : 2 * d].T + in_bias[d : 2 * d]
    v = keys @ in_weight[2 * d :].T + in_bias[2 * d :]
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
    return out @ out_weight.T + out_bias
