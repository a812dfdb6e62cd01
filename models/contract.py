"""The contract every sequence model keeps, so training, evaluation and serving treat them alike.

State is passed explicitly (never hidden in the module): the service keeps one
state per visit in Redis as packed float32 bytes, and folds new clicks into it
with ``step``. Scoring is an inner product between the query vectors and the
item vectors, which is what FAISS searches; a model with an output bias folds
it in by appending a constant 1 to its queries and the bias to its item vectors.

Invariant (held by a test for every model): clicking a session through
``step`` one item at a time gives the same scores as the batched ``encode`` of
the same session, to float tolerance.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class SequenceModel(Protocol):
    #: number of query vectors per state (1 for GRU4Rec, K for multi-interest models)
    n_interests: int

    def item_vectors(self) -> torch.Tensor:
        """The retrieval space: float32 [n_items, d]."""
        ...

    def init_state(self) -> torch.Tensor:
        """The state of a visit before its first click: a 1-D float32 tensor."""
        ...

    def step(self, state: torch.Tensor, item: int) -> torch.Tensor:
        """The state after one more click on item row ``item``."""
        ...

    def interests(self, state: torch.Tensor) -> torch.Tensor:
        """Query vectors of a state: float32 [K, d]."""
        ...

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Batched queries for left-padded prefixes (``-1`` = padding): float32 [B, K, d]."""
        ...

    def checkpoint_weights(self) -> dict[str, torch.Tensor]:
        """What a checkpoint stores; the class's ``from_checkpoint`` rebuilds the model from it."""
        ...


def max_scores(model: SequenceModel, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Scores of all items for a batch: max over the K interests of the inner products.

    This is the max-score aggregation of ComiRec, and for K = 1 simply the model's
    output scores, so any ``SequenceModel`` plugs into the next-item evaluation.
    """
    queries = model.encode(prefix, lengths)  # [B, K, d]
    scores = torch.einsum("bkd,nd->bkn", queries, model.item_vectors())
    return scores.max(dim=1).values


def pack_state(state: torch.Tensor) -> bytes:
    """A visit's state as the float32 bytes the session store keeps."""
    return state.detach().to(torch.float32).cpu().contiguous().numpy().tobytes()


def unpack_state(data: bytes) -> torch.Tensor:
    """The state ``pack_state`` wrote (a copy: the bytes' buffer is read-only)."""
    return torch.from_numpy(np.frombuffer(data, np.float32).copy())
