"""The one table of model kinds: every part of nextitem that names a kind derives from it.

A checkpoint's ``kind`` is looked up here to rebuild its model; the training
command line makes ``nextitem train <kind>`` for the kinds trained on sessions
or sequences, evaluation takes its model choices from it, the service's
retrain accepts its ``retrainable_kinds()``, and the trainer maps a kind's
*family* to the one training function of that family. Adding a model kind is
one model module, one entry below and its parameter file (plus a training
function only when it opens a new family).

A servable model class provides ``from_checkpoint(hyperparameters, weights)``
(a classmethod returning a ready ``SequenceModel`` in eval mode) and
``checkpoint_weights() -> dict[str, Tensor]``. Classes are named by import
path and imported only when asked for, so loading one model kind never pulls in
the code of the others.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

import torch

from models.contract import SequenceModel

Family = Literal["session", "multi-interest", "attention", "cf"]


@dataclass(frozen=True)
class ModelKind:
    #: the checkpoint ``kind`` and the name on the command line and in the admin API
    name: str
    #: the model class, ``"module.path:ClassName"``, imported on first use
    target: str
    #: how it is trained: kinds of one family share one training function
    family: Family
    #: whether the service's retrain (``POST /admin/retrain``) can train it
    retrainable: bool
    #: the bundled parameter file (``training/model_params/<params>.toml``) a retrain and a
    #: first model start from; empty when the kind is only exported by its own commands
    params: str
    description: str

    def model_class(self) -> type:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


KINDS: tuple[ModelKind, ...] = (
    ModelKind(
        "gru4rec",
        "models.gru4rec:GRU4Rec",
        "session",
        retrainable=True,
        params="gru4rec_service",
        description="GRU4Rec: a recurrent network over the session's clicks (one interest)",
    ),
    ModelKind(
        "comirec-sa",
        "models.comirec:ComiRecSA",
        "multi-interest",
        retrainable=True,
        params="multi_interest_service",
        description="ComiRec-SA: K interests by self-attention over the last L clicks",
    ),
    ModelKind(
        "comirec-dr",
        "models.comirec:ComiRecDR",
        "multi-interest",
        retrainable=True,
        params="multi_interest_service",
        description="ComiRec-DR: K interests by dynamic routing over the last L clicks",
    ),
    ModelKind(
        "mind",
        "models.mind:MIND",
        "multi-interest",
        retrainable=True,
        params="multi_interest_service",
        description="MIND: shared-map routing and label-aware attention, adaptive K",
    ),
    ModelKind(
        "sasrec",
        "models.sasrec:SASRec",
        "attention",
        retrainable=True,
        params="sasrec",
        description="SASRec: causal self-attention over the last L clicks",
    ),
    ModelKind(
        "bert4rec",
        "models.bert4rec:BERT4Rec",
        "attention",
        retrainable=True,
        params="bert4rec",
        description="BERT4Rec: bidirectional self-attention trained by the cloze task",
    ),
    ModelKind(
        "cl4srec",
        "models.cl4srec:CL4SRec",
        "attention",
        retrainable=True,
        params="cl4srec",
        description="CL4SRec: SASRec with a contrastive loss over cropped, masked or "
        "reordered views",
    ),
    ModelKind(
        "ecl-sr",
        "models.ecl_sr:ECLSR",
        "attention",
        retrainable=True,
        params="ecl_sr",
        description="ECL-SR: a causal encoder trained with invariant and equivariant "
        "contrastive objectives (dropout views; a generator and a discriminator)",
    ),
    ModelKind(
        "cf-factors",
        "models.cf.serving:FactorSessionModel",
        "cf",
        retrainable=False,
        params="",
        description="SVD, SVD++, timeSVD++ or the baseline, served by the SVD++ fold-in",
    ),
    ModelKind(
        "cf-knn",
        "models.cf.serving:KnnSessionModel",
        "cf",
        retrainable=False,
        params="",
        description="item- or user-based kNN (or the RBM's item cosine) on the session's clicks",
    ),
)

_BY_NAME = {k.name: k for k in KINDS}


def model_kind(name: str) -> ModelKind:
    if name not in _BY_NAME:
        raise KeyError(f"unknown model kind {name!r}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def kind_names(family: Family | None = None) -> tuple[str, ...]:
    """Every kind's name (of one family, if given), in table order."""
    return tuple(k.name for k in KINDS if family is None or k.family == family)


def retrainable_kinds() -> tuple[str, ...]:
    """The kinds the service's retrain can train: what the admin request schema accepts."""
    return tuple(k.name for k in KINDS if k.retrainable)


def build_model(
    kind: str, hyperparameters: dict[str, Any], weights: dict[str, torch.Tensor]
) -> SequenceModel:
    """The model of a checkpoint, ready to serve (eval mode)."""
    return model_kind(kind).model_class().from_checkpoint(hyperparameters, weights)
