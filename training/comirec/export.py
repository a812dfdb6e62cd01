"""The multi-interest family's glue: its parameters, a model of any of its kinds, its checkpoint.

ComiRec-SA, ComiRec-DR and MIND take one set of parameters: the model's
(``MultiInterestConfig``) and the training loop's (``TrainConfig``), given
together in one file or ``k=v`` string. The number of items comes from the
data and the seed from the command, so neither is a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.comirec import MultiInterestConfig, MultiInterestModel
from models.registry import model_kind
from training.comirec.data import UserSequences
from training.comirec.train import TrainConfig, TrainResult
from training.params import check_known, field_names, load_config
from training.publish import Trained

#: set by the program: the data gives the items, the command the seed
FIXED = {"n_items", "seed"}
MODEL_KEYS = field_names(MultiInterestConfig) - FIXED
LOOP_KEYS = field_names(TrainConfig) - FIXED


def split_params(
    params: dict[str, Any], kind: str, extra: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, loop, ``extra``) parameters; a key that is none of them is an error."""
    extra = set(extra)
    check_known(params, MODEL_KEYS | LOOP_KEYS | extra, kind)
    pick = lambda keys: {k: v for k, v in params.items() if k in keys}  # noqa: E731
    return pick(MODEL_KEYS), pick(LOOP_KEYS), pick(extra)


def loop_config(params: dict[str, Any], kind: str, seed: int) -> TrainConfig:
    return load_config(TrainConfig, params, what=kind, fixed={"seed": seed})


def build(kind: str, n_items: int, params: dict[str, Any], seed: int) -> MultiInterestModel:
    """A new model of ``kind`` (a multi-interest kind of the table) for ``n_items`` items."""
    config = load_config(
        MultiInterestConfig, params, what=kind, fixed={"n_items": n_items, "seed": seed}
    )
    return model_kind(kind).model_class()(config)


def as_trained(
    kind: str,
    model: MultiInterestModel,
    result: TrainResult,
    data: UserSequences,
    cfg: TrainConfig,
    title: str,
) -> Trained:
    """A trained multi-interest model as what its checkpoint records."""
    from training.curves import training_curve

    return Trained(
        kind=kind,
        model=model,
        hyperparameters=model.hyperparameters(),
        item_ids=data.item_ids,
        popularity=data.popularity,
        categories=data.categories,
        training={
            "iterations": result.iterations,
            "best_iteration": result.best_iteration,
            "stopped": result.stopped,
            "samples_per_second": result.samples_per_second,
            "config": vars(cfg),
            "valid": result.best_valid,
            "sequences": data.summary,
            "curve": result.curve,
        },
        plot=lambda path: training_curve(result.curve, title, path),
    )
