"""Turn a fitted CF model into a servable checkpoint (kinds ``cf-factors`` and ``cf-knn``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from models.cf.baseline import Baseline
from models.cf.factor import SVD, SVDpp, TimeSVDpp
from models.cf.knn import KNN
from models.cf.rbm import RBM
from models.cf.recommend import RatingModel
from models.cf.serving import FactorSessionModel, KnnSessionModel
from training.data.sessions import Dataset
from training.publish import Trained, publish


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C"))  # always a copy


def item_item_cosine(knn: KNN) -> np.ndarray:
    """Cosine of the items' centred rating columns (user-based kNN has no item-item matrix)."""
    m = sp.csr_matrix(
        (knn.neighbour_value, knn.neighbour_index, knn.neighbour_indptr),
        shape=(knn.n_items, knn.n_users),
    )
    dots = np.asarray((m @ m.T).toarray())
    norms = np.sqrt(np.diag(dots))
    return dots / np.maximum(np.outer(norms, norms), 1e-12)


def session_model(model: RatingModel) -> tuple[str, Any]:
    """(checkpoint kind, SequenceModel) for a fitted rating model."""
    if isinstance(model, KNN):
        sim = item_item_cosine(model) if model.user_based else model.sim
        return "cf-knn", KnnSessionModel(_t(sim))
    if isinstance(model, RBM):
        # The RBM has no inner-product form: serve the item-item cosine of its item vectors.
        w = model.item_vectors()
        norms = np.maximum(np.linalg.norm(w, axis=1), 1e-12)
        return "cf-knn", KnnSessionModel(_t((w @ w.T) / np.outer(norms, norms)))
    if isinstance(model, TimeSVDpp):
        last_bin = model.bi_bin[:, -1]
        return "cf-factors", FactorSessionModel(_t(model.Q), _t(model.bi + last_bin), _t(model.Y))
    if isinstance(model, SVDpp):
        return "cf-factors", FactorSessionModel(_t(model.Q), _t(model.bi), _t(model.Y))
    if isinstance(model, SVD):
        return "cf-factors", FactorSessionModel(_t(model.Q), _t(model.bi), _t(model.Q))
    if isinstance(model, Baseline):
        empty = np.zeros((model.n_items, 0))
        return "cf-factors", FactorSessionModel(_t(empty), _t(model.bi), _t(empty))
    raise TypeError(f"{type(model).__name__} has no servable form")


def export_checkpoint(
    model_dir: Path,
    algorithm: str,
    model: RatingModel,
    ds: Dataset,
    train_items: np.ndarray,
    hyperparameters: dict[str, Any],
    metrics: dict[str, float],
    data: dict[str, Any],
) -> Path:
    """Write the session form of a fitted CF model as a checkpoint (CURRENT is not touched)."""
    kind, served = session_model(model)
    trained = Trained(
        kind=kind,
        model=served,
        hyperparameters={"algorithm": algorithm, **hyperparameters},
        item_ids=ds.items.ids,
        popularity=np.bincount(train_items, minlength=ds.n_items),
        categories=ds.items.categories,
    )
    return publish(trained, model_dir, metrics=metrics, data=data)
