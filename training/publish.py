"""The one path from a trained model to a checkpoint: plot -> write -> (maybe) activate.

Every trainer (``nextitem train <kind>``, the CF exporter, the service's
retrain) ends in ``publish``: it hands over a ``Trained`` record, which holds
what a checkpoint needs and nothing about how the model was trained, and gets
the new version's directory back.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.contract import SequenceModel
from training.checkpoint import set_current, write_checkpoint

#: the training curve's file in a checkpoint
CURVE = "training.png"


@dataclass(frozen=True)
class Trained:
    """A trained model with what its checkpoint records beside the weights."""

    #: the model kind (``models.registry``)
    kind: str
    model: SequenceModel
    #: what ``from_checkpoint`` rebuilds the model from (plus the training settings)
    hyperparameters: dict[str, Any]
    #: model row -> external item id
    item_ids: np.ndarray
    popularity: np.ndarray
    categories: np.ndarray | None = None
    #: the manifest's ``training`` record: epochs, iterations, threads, ...
    training: dict[str, Any] = field(default_factory=dict)
    #: draws the training curve to the PNG path it is given and returns that path
    plot: Callable[[Path], Path] | None = None


def publish(
    trained: Trained,
    model_dir: Path,
    *,
    activate: bool = False,
    metrics: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``trained`` as a new checkpoint of ``model_dir``; with ``activate``, make it CURRENT.

    ``metrics`` are its evaluation figures, ``data`` the summary of what it was
    trained on, ``extra`` further manifest entries (a retrain's gate).
    """
    manifest_extra = {"training": trained.training} if trained.training else {}
    with tempfile.TemporaryDirectory() as tmp:
        attachments = {CURVE: trained.plot(Path(tmp) / CURVE)} if trained.plot else {}
        path = write_checkpoint(
            model_dir,
            trained.kind,
            hyperparameters=trained.hyperparameters,
            weights=trained.model.checkpoint_weights(),
            item_ids=trained.item_ids,
            popularity=trained.popularity,
            categories=trained.categories,
            metrics=metrics,
            data=data,
            extra={**manifest_extra, **(extra or {})},
            attachments=attachments,
        )
    if activate:
        set_current(model_dir, path.name)
    return path
