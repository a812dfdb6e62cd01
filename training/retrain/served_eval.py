"""Next-item figures of any checkpointed model on a hold-out of external ids, as served.

The service folds only items its model knows into a visit's state and cannot
recommend an item outside its catalog. So a hold-out is mapped onto each
model's catalog: unknown clicks are skipped, and every target the model cannot
name counts as a miss (Recall and MRR are over *all* hold-out targets). Two
models with different catalogs are thus compared on the same footing, which
is what the retrain quality gate needs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from models.contract import SequenceModel, max_scores
from models.gru4rec import GRU4Rec
from training.data.sessions import ItemTable, Sessions
from training.evaluation import NextItemTask, evaluate_next_item
from training.gru4rec.evaluate import evaluate_sessions


class _ContractScorer:
    def __init__(self, model: SequenceModel) -> None:
        self.model = model

    def score(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return max_scores(self.model, prefix, lengths)


def count_targets(holdout: pd.DataFrame) -> int:
    """Every event but the first of each hold-out session is a target."""
    return len(holdout) - holdout["session_id"].nunique()


def served_metrics(
    model: SequenceModel, item_ids: np.ndarray, holdout: pd.DataFrame, ks: tuple[int, ...] = (20,)
) -> dict[str, float]:
    """Recall@k and MRR@k of ``model`` (rows named by ``item_ids``) over all hold-out targets."""
    total = count_targets(holdout)
    zero = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "mrr")}
    if total == 0:
        return zero
    table = ItemTable(ids=np.asarray(item_ids).astype(str).astype(object))
    rows = table.index_of(holdout["item_id"].to_numpy().astype(object))
    known = rows >= 0
    sessions = Sessions.from_groups(
        holdout["session_id"].to_numpy()[known],
        rows[known],
        times=holdout["ts"].to_numpy()[known],
    )
    task = NextItemTask.from_sessions(sessions)
    if len(task) == 0:
        return zero
    if isinstance(model, GRU4Rec):
        metrics, _ = evaluate_sessions(model, task, ks=ks, progress=False)
    else:
        metrics, _ = evaluate_next_item(_ContractScorer(model), task, ks=ks, progress=False)
    # Means over the targets the model could be asked about -> over all targets (misses = 0).
    return {name: value * len(task) / total for name, value in metrics.items()}
