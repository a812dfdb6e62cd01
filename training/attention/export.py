"""The attention family's glue: its parameters, a model of any of its kinds, its checkpoint.

A kind's parameters are its network's (the model class's ``config_class``) and
the training loop's (``TrainConfig``), given together in one file or ``k=v``
string. The number of items comes from the data and the seed from the
command, so neither is a parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.registry import model_kind
from models.windowed import WindowedModel
from training.attention.data import SequenceData
from training.attention.train import TrainConfig, TrainResult
from training.params import check_known, field_names, load_config
from training.publish import Trained

#: set by the program: the data gives the items, the command the seed
FIXED = {"n_items", "seed"}
LOOP_KEYS = field_names(TrainConfig) - FIXED


def model_keys(kind: str) -> set[str]:
    return field_names(model_kind(kind).model_class().config_class) - FIXED


def split_params(
    params: dict[str, Any], kind: str, extra: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, loop, ``extra``) parameters; a key that is none of them is an error."""
    extra, network = set(extra), model_keys(kind)
    check_known(params, network | LOOP_KEYS | extra, kind)
    pick = lambda keys: {k: v for k, v in params.items() if k in keys}  # noqa: E731
    return pick(network), pick(LOOP_KEYS), pick(extra)


def loop_config(params: dict[str, Any], kind: str, seed: int) -> TrainConfig:
    return load_config(TrainConfig, params, what=kind, fixed={"seed": seed})


def build(kind: str, n_items: int, params: dict[str, Any], seed: int) -> WindowedModel:
    """A new model of ``kind`` (an attention kind of the table) for ``n_items`` items."""
    cls = model_kind(kind).model_class()
    config = load_config(
        cls.config_class, params, what=kind, fixed={"n_items": n_items, "seed": seed}
    )
    return cls(config)


def as_trained(
    kind: str,
    model: WindowedModel,
    result: TrainResult,
    data: SequenceData,
    cfg: TrainConfig,
    title: str,
) -> Trained:
    """A trained attention model as what its checkpoint records."""
    from training.curves import training_curve

    return Trained(
        kind=kind,
        model=model,
        hyperparameters=model.hyperparameters(),
        item_ids=data.item_ids,
        popularity=data.popularity,
        training={
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            "stopped": result.stopped,
            "sequences_per_second": result.sequences_per_second,
            "seconds_to_best": result.seconds_to_best,
            "config": vars(cfg),
            "valid": result.best_valid,
            "data": data.summary,
            "curve": result.curve,
        },
        plot=lambda path: training_curve(
            result.curve, title, path, x="epoch", metric=cfg.stop_metric
        ),
    )
