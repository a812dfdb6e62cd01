"""Per model family: train on the retrain's sessions and hand back what a checkpoint needs.

The kinds a retrain may train, and the family of each, come from the table of
model kinds (``models.registry``); this module maps each family to its one
training function (``TRAINERS``). Every kind starts from its bundled parameter
file, overridden by the request's parameters.

GRU4Rec trains on the sessions as they are (session-parallel mini-batches).
The multi-interest models (ComiRec-SA/-DR, MIND) train on the same sessions
read as sequences, with their own item filter, their 8:1:1 split of sequences
for early stopping on validation Recall@50, and sampled softmax. The attention
models (SASRec) train on the sessions too, a seeded tenth held out for early
stopping. The quality gate then judges every kind on the same next-item
hold-out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from models.registry import Family, ModelKind, model_kind, retrainable_kinds
from training.data.sessions import Dataset, ItemTable, Sessions
from training.params import read_params
from training.publish import Trained

Progress = Callable[[float, str], None]
Trainer = Callable[[ModelKind, Sessions, ItemTable, dict[str, Any], Progress], Trained]


def train_session(
    kind: ModelKind,
    sessions: Sessions,
    items: ItemTable,
    params: dict[str, Any],
    progress: Progress,
) -> Trained:
    from training.gru4rec.export import as_trained
    from training.gru4rec.params import load_params
    from training.gru4rec.train import EpochStats, train

    p = load_params(kind.params, params)

    def on_epoch(stats: EpochStats) -> None:
        progress(0.1 + 0.7 * stats.epoch / p.n_epochs, f"train: epoch {stats.epoch}/{p.n_epochs}")

    result = train(sessions, len(items), p, progress=False, on_epoch=on_epoch)
    return as_trained(result, sessions, items, "GRU4Rec retrained on the event log")


def train_multi_interest(
    kind: ModelKind,
    sessions: Sessions,
    items: ItemTable,
    params: dict[str, Any],
    progress: Progress,
) -> Trained:
    from training.comirec.data import prepare
    from training.comirec.export import as_trained, build, loop_config, split_params
    from training.comirec.train import train

    model_params, loop_params, extra = split_params(
        read_params(kind.params, params), kind.name, extra={"seed", "min_count"}
    )
    seed, min_count = int(extra.get("seed", 0)), int(extra.get("min_count", 2))
    cfg = loop_config(loop_params, kind.name, seed)  # before the data: a typo fails at once
    ds = Dataset(name="event-log", kind="sequence", items=items, parts={"all": sessions})
    data = prepare(ds, seed=seed, min_count=min_count)
    if data.n_items == 0 or len(data.split.valid) == 0:
        raise ValueError(f"{kind.name}: too few sequences of {min_count}+ clicks to train on")
    model = build(kind.name, data.n_items, model_params, seed)

    def on_eval(point: dict[str, Any]) -> None:
        done = point["iteration"] / cfg.max_iter
        progress(0.1 + 0.7 * done, f"train: iteration {point['iteration']:,}/{cfg.max_iter:,}")

    result = train(model, data, cfg, progress=False, on_eval=on_eval)
    title = f"{kind.name} retrained on the event log"
    return as_trained(kind.name, model, result, data, cfg, title)


def train_attention(
    kind: ModelKind,
    sessions: Sessions,
    items: ItemTable,
    params: dict[str, Any],
    progress: Progress,
) -> Trained:
    from training.attention.data import from_sessions
    from training.attention.export import as_trained, build, loop_config, split_params
    from training.attention.train import train

    model_params, loop_params, extra = split_params(
        read_params(kind.params, "attention_service", params), kind.name, extra={"seed"}
    )
    seed = int(extra.get("seed", 0))
    cfg = loop_config(loop_params, kind.name, seed)  # before the data: a typo fails at once
    data = from_sessions(sessions, items.ids, seed=seed)
    model = build(kind.name, data.n_items, model_params, seed)

    def on_eval(point: dict[str, Any]) -> None:
        progress(0.1 + 0.7 * point["epoch"] / cfg.epochs, f"train: epoch {point['epoch']}")

    result = train(model, data, cfg, progress=False, on_eval=on_eval)
    return as_trained(
        kind.name, model, result, data, cfg, f"{kind.name} retrained on the event log"
    )


#: the one place a model family meets its training function
TRAINERS: dict[Family, Trainer] = {
    "session": train_session,
    "multi-interest": train_multi_interest,
    "attention": train_attention,
}


def trainer_for(kind: str) -> Callable[[Sessions, ItemTable, dict[str, Any], Progress], Trained]:
    """The training function of ``kind``, a retrainable kind of the table (else ``ValueError``)."""
    if kind not in retrainable_kinds():
        raise ValueError(
            f"retraining {kind!r} is not supported ({', '.join(retrainable_kinds())} are)"
        )
    entry = model_kind(kind)
    return functools.partial(TRAINERS[entry.family], entry)
