"""Per model kind: train on the retrain's sessions and hand back what a checkpoint needs.

GRU4Rec trains on the sessions as they are (session-parallel mini-batches).
The multi-interest models (ComiRec-SA/-DR, MIND) train on the same sessions
read as sequences, with their own item filter, their 8:1:1 split of sequences
for early stopping on validation Recall@50, and sampled softmax; the quality
gate then judges every kind on the same next-item hold-out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.comirec import ComiRecDR, ComiRecSA, MultiInterestConfig, MultiInterestModel
from models.mind import MIND
from training.data.sessions import Dataset, ItemTable, Sessions
from training.params import ParamError, check_known

Progress = Callable[[float, str], None]


@dataclass
class Trained:
    model: Any  # a SequenceModel
    hyperparameters: dict[str, Any]
    weights: dict[str, torch.Tensor]
    item_ids: np.ndarray  # model row -> external id
    popularity: np.ndarray
    categories: np.ndarray | None
    training: dict[str, Any]
    plot: Callable[[Path], Path]  # writes the training curve PNG to the given path


def train_gru4rec(
    sessions: Sessions, items: ItemTable, params: dict[str, Any], progress: Progress
) -> Trained:
    from training.gru4rec.export import DEFAULT_PARAMS, plot_losses
    from training.gru4rec.params import load_params
    from training.gru4rec.train import EpochStats, item_support, train

    p = load_params(DEFAULT_PARAMS, params)

    def on_epoch(stats: EpochStats) -> None:
        progress(0.1 + 0.7 * stats.epoch / p.n_epochs, f"train: epoch {stats.epoch}/{p.n_epochs}")

    result = train(sessions, len(items), p, progress=False, on_epoch=on_epoch)
    return Trained(
        model=result.model,
        hyperparameters={**p.to_dict(), **result.model.hyperparameters()},
        weights=result.model.checkpoint_weights(),
        item_ids=items.ids,
        popularity=item_support(sessions, len(items)),
        categories=items.categories,
        training={
            "epochs": [e.summary() for e in result.epochs],
            "threads": torch.get_num_threads(),
        },
        plot=lambda path: plot_losses(result, path, "GRU4Rec retrained on the event log"),
    )


MULTI_INTEREST: dict[str, type[MultiInterestModel]] = {
    cls.kind: cls for cls in (ComiRecSA, ComiRecDR, MIND)
}
#: a retrain is a refresh, not a paper reproduction: fewer iterations than the paper's
#: defaults, and validation on a fixed sample of 2,000 visits rather than all of them
MULTI_INTEREST_DEFAULTS = {"max_iter": 3000, "eval_every": 500, "patience": 3, "valid_users": 2000}


def train_multi_interest(
    kind: str, sessions: Sessions, items: ItemTable, params: dict[str, Any], progress: Progress
) -> Trained:
    from training.comirec.data import prepare
    from training.comirec.plots import training_curve
    from training.comirec.train import TrainConfig, train

    model_keys = MultiInterestConfig.names() - {"n_items", "seed"}
    loop_keys = TrainConfig.names()
    merged = {**MULTI_INTEREST_DEFAULTS, **params}
    check_known(merged, model_keys | loop_keys | {"min_count"}, kind)
    min_count = int(merged.pop("min_count", 2))
    ds = Dataset(name="event-log", kind="sequence", items=items, parts={"all": sessions})
    data = prepare(ds, seed=int(merged.get("seed", 0)), min_count=min_count)
    if data.n_items == 0 or len(data.split.valid) == 0:
        raise ValueError(f"{kind}: too few sequences of {min_count}+ clicks to train on")
    try:
        cfg = TrainConfig(**{k: v for k, v in merged.items() if k in loop_keys})
        config = MultiInterestConfig(
            n_items=data.n_items,
            seed=cfg.seed,
            **{k: v for k, v in merged.items() if k in model_keys},
        )
    except (TypeError, ValueError) as exc:
        raise ParamError(f"{kind}: {exc}") from None
    model = MULTI_INTEREST[kind](config)

    def on_eval(point: dict[str, Any]) -> None:
        done = point["iteration"] / cfg.max_iter
        progress(0.1 + 0.7 * done, f"train: iteration {point['iteration']:,}/{cfg.max_iter:,}")

    result = train(model, data, cfg, progress=False, on_eval=on_eval)
    return Trained(
        model=model,
        hyperparameters=model.hyperparameters(),
        weights=model.checkpoint_weights(),
        item_ids=data.item_ids,
        popularity=data.popularity,
        categories=data.categories,
        training={
            "iterations": result.iterations,
            "best_iteration": result.best_iteration,
            "stopped": result.stopped,
            "config": vars(cfg),
            "valid": result.best_valid,
            "sequences": data.summary,
        },
        plot=lambda path: training_curve(result.curve, f"{kind} retrained on the event log", path),
    )


def train_kind(
    kind: str, sessions: Sessions, items: ItemTable, params: dict[str, Any], progress: Progress
) -> Trained:
    if kind == "gru4rec":
        return train_gru4rec(sessions, items, params, progress)
    if kind in MULTI_INTEREST:
        return train_multi_interest(kind, sessions, items, params, progress)
    raise ValueError(f"retraining {kind!r} is not supported")


KINDS = ("gru4rec", *MULTI_INTEREST)
