"""Checkpoint ``kind`` -> model class, so the service can rebuild any model from its checkpoint.

A servable model class provides ``from_checkpoint(hyperparameters, weights)``
(a classmethod returning a ready ``SequenceModel`` in eval mode) and
``checkpoint_weights() -> dict[str, Tensor]``. Classes are named by import
path and imported only when asked for, so loading one model kind never pulls in
the code of the others.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from models.contract import SequenceModel

MODEL_KINDS: dict[str, str] = {
    "cf-factors": "models.cf.serving:FactorSessionModel",
    "cf-knn": "models.cf.serving:KnnSessionModel",
    "comirec-sa": "models.comirec:ComiRecSA",
    "comirec-dr": "models.comirec:ComiRecDR",
    "gru4rec": "models.gru4rec:GRU4Rec",
    "mind": "models.mind:MIND",
}


def register(kind: str, target: str) -> None:
    """Add a kind (``"module.path:ClassName"``); used by model modules and tests."""
    MODEL_KINDS[kind] = target


def model_class(kind: str) -> type:
    if kind not in MODEL_KINDS:
        raise KeyError(f"unknown model kind {kind!r}; known: {sorted(MODEL_KINDS)}")
    module, _, name = MODEL_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def build_model(
    kind: str, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
) -> SequenceModel:
    return model_class(kind).from_checkpoint(hyperparameters, weights)
