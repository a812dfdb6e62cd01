"""One retrain: event frame -> preprocess -> train -> quality gate -> checkpoint.

The gate compares the new model with the active one on the *same* hold-out
(the newest sessions of the log, which the new model did not train on), as the
service would answer them (``served_eval``). The new model passes when its
Recall@20 is at least ``gate_ratio`` times the active model's; with no active
model it passes when it scores at all. The checkpoint is written either way
(a rejected model can still be inspected and activated by hand); activating
it is the caller's decision, on ``passed``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.registry import build_model
from training.checkpoint import load_checkpoint
from training.data.preprocess import build_item_table, to_sessions
from training.publish import publish
from training.retrain.holdout import clean, dataset_events, newest_sessions
from training.retrain.served_eval import count_targets, served_metrics
from training.retrain.trainers import trainer_for

Progress = Callable[[float, str], None]
GATE_METRIC = "recall@20"


class NothingToTrain(ValueError):
    """The event log (and base dataset) hold too little to train and evaluate a model."""


@dataclass(frozen=True)
class RetrainConfig:
    kind: str = "gru4rec"
    params: dict[str, Any] = field(default_factory=dict)
    base_dataset: str | None = None
    since: float | None = None  # Unix seconds; earlier logged events are ignored
    gate_ratio: float = 0.95
    holdout_fraction: float = 0.1
    min_item_support: int = 5


@dataclass(frozen=True)
class RetrainOutcome:
    path: Path
    version: str
    passed: bool
    metrics: dict[str, Any]


def _gate(candidate: dict[str, float], active: dict[str, float] | None, ratio: float) -> dict:
    new = candidate[GATE_METRIC]
    if active is None:
        return {"metric": GATE_METRIC, "passed": new > 0, "rule": "no active model: > 0"}
    bar = ratio * active[GATE_METRIC]
    return {
        "metric": GATE_METRIC,
        "passed": new >= bar and new > 0,
        "rule": f">= {ratio} x active = {bar:.4f}",
    }


def retrain(
    log_events: pd.DataFrame,
    model_dir: Path,
    cfg: RetrainConfig,
    active_version: str | None = None,
    data_note: dict[str, Any] | None = None,
    progress: Progress = lambda fraction, stage: None,
) -> RetrainOutcome:
    """Train on ``log_events`` (+ the base dataset), gate against ``active_version``, write."""
    train = trainer_for(cfg.kind)
    t0 = time.perf_counter()
    progress(0.06, "preprocess")
    events = log_events[["session_id", "item_id", "ts"]]
    if cfg.since is not None:
        events = events[events["ts"] >= cfg.since]
    n_log = len(events)
    if cfg.base_dataset:
        start = float(events["ts"].min()) if n_log else time.time()
        events = pd.concat([dataset_events(cfg.base_dataset, start), events], ignore_index=True)
    events = clean(events, cfg.min_item_support)
    held = newest_sessions(events, cfg.holdout_fraction)
    train_events, holdout = events[~held], events[held]
    if train_events.empty or count_targets(holdout) == 0:
        raise NothingToTrain(
            f"{n_log} logged events (+ base data) leave {len(train_events)} events to train on and "
            f"{count_targets(holdout)} hold-out targets after preprocessing "
            f"(min_item_support={cfg.min_item_support}); log more events or lower it"
        )
    item_of = train_events["item_id"].to_numpy().astype(object)
    ts = train_events["ts"].to_numpy()
    table = build_item_table(item_of, ts)
    sessions = to_sessions(table, train_events["session_id"].to_numpy(), item_of, ts, 1)
    progress(0.1, f"train {cfg.kind}: {sessions.n_events:,} events, {len(table):,} items")
    t1 = time.perf_counter()
    trained = train(sessions, table, cfg.params, progress)
    t2 = time.perf_counter()
    progress(0.82, "evaluate")
    candidate = served_metrics(trained.model, trained.item_ids, holdout)
    active = None
    if active_version is not None:
        ckpt = load_checkpoint(model_dir / active_version)
        model = build_model(ckpt.kind, ckpt.hyperparameters, ckpt.weights)
        if hasattr(model, "eval"):
            model.eval()
        active = served_metrics(model, ckpt.items["item_id"].to_numpy(), holdout)
    gate = _gate(candidate, active, cfg.gate_ratio)
    t3 = time.perf_counter()
    metrics = {
        "holdout": {
            "sessions": int(holdout["session_id"].nunique()),
            "targets": count_targets(holdout),
            "fraction": cfg.holdout_fraction,
            "from": float(holdout["ts"].min()),
        },
        "candidate": candidate,
        "active": {"version": active_version, **(active or {})} if active_version else None,
        "gate": gate,
        "seconds": {"prepare": t1 - t0, "train": t2 - t1, "evaluate": t3 - t2},
    }
    progress(0.92, "write checkpoint")
    path = publish(
        dataclasses.replace(trained, item_ids=np.asarray(trained.item_ids).astype(str)),
        model_dir,
        metrics=candidate,
        data={
            "name": "event-log" + (f"+{cfg.base_dataset}" if cfg.base_dataset else ""),
            "log_events": n_log,
            "train_events": int(sessions.n_events),
            "since": cfg.since,
            **(data_note or {}),
        },
        extra={"gate": gate, "holdout": metrics["holdout"], "active_metrics": metrics["active"]},
    )
    return RetrainOutcome(
        path=path, version=path.name, passed=bool(gate["passed"]), metrics=metrics
    )


__all__ = ["NothingToTrain", "RetrainConfig", "RetrainOutcome", "retrain"]
