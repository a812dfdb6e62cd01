"""Retraining on the trainer side: the hold-out, the as-served metrics, the gate, the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from app.settings import Settings
from training.retrain.holdout import clean, newest_sessions
from training.retrain.pipeline import _gate
from training.retrain.served_eval import count_targets, served_metrics

# ---- hold-out and cleaning --------------------------------------------------------------------


def _frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["session_id", "item_id", "ts"])


def test_newest_sessions_are_held_out_by_their_last_event() -> None:
    # last events: a at 10, b at 30, c at 20, d at 40 -> newest half = b and d
    ev = _frame(
        [
            ("a", "1", 1),
            ("b", "1", 2),
            ("a", "2", 10),
            ("c", "3", 20),
            ("b", "2", 30),
            ("d", "1", 40),
        ]
    )
    held = newest_sessions(ev, 0.5)
    assert ev.loc[held, "session_id"].tolist() == ["b", "b", "d"]
    assert newest_sessions(ev, 0.01).sum() == 1  # at least one session


def test_sessions_ending_at_the_same_time_are_ordered_by_the_log() -> None:
    # one batch without timestamps: every click at t = 5; the log order decides
    ev = _frame([("a", "1", 5), ("b", "1", 5), ("c", "2", 5), ("a", "2", 5), ("d", "3", 5)])
    held = newest_sessions(ev, 0.5)  # 4 sessions -> 2; last clicks: b 1, c 2, a 3, d 4
    assert ev.loc[held, "session_id"].tolist() == ["a", "a", "d"]


def test_clean_applies_session_length_and_item_support() -> None:
    ev = _frame([("a", "1", 1), ("a", "2", 2), ("b", "1", 3), ("b", "3", 4), ("c", "1", 5)])
    # support: 1 -> 3 (c is a single click, dropped first: 1 -> 2), 2 -> 1, 3 -> 1
    assert clean(ev, 1)["session_id"].tolist() == ["a", "a", "b", "b"]
    assert clean(ev, 2).empty  # only item 1 stays, every session falls to one click


# ---- as-served metrics and the gate -----------------------------------------------------------


class _NextRow(torch.nn.Module):
    """A model that always predicts row (last clicked row + 1): scores are exact to check."""

    n_interests = 1

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def item_vectors(self) -> torch.Tensor:
        return torch.eye(self.n)

    def encode(self, prefix: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        nxt = (prefix[:, -1] + 1) % self.n
        return torch.nn.functional.one_hot(nxt, self.n).float()[:, None, :]


def test_served_metrics_count_unknown_targets_as_misses() -> None:
    model = _NextRow(4)
    ids = np.array(["a", "b", "c", "d"])
    # s1: a b c -> both targets predicted (b after a, c after b)
    # s2: a z b -> z is unknown (a miss); b is predicted from a (z is skipped, as served)
    # s3: d a   -> a after d: row 3 + 1 = 0 -> predicted
    # s4: c a   -> predicts d, misses
    holdout = _frame(
        [("s1", "a", 1), ("s1", "b", 2), ("s1", "c", 3), ("s2", "a", 4), ("s2", "z", 5),
         ("s2", "b", 6), ("s3", "d", 7), ("s3", "a", 8), ("s4", "c", 9), ("s4", "a", 10)]
    )  # fmt: skip
    assert count_targets(holdout) == 6
    m = served_metrics(model, ids, holdout, ks=(1,))
    assert m["recall@1"] == pytest.approx(4 / 6)
    assert m["mrr@1"] == pytest.approx(4 / 6)
    # with every item ranked, the only misses are the targets outside the catalog
    assert served_metrics(model, ids, holdout, ks=(4,))["recall@4"] == pytest.approx(5 / 6)


def test_gate_rule() -> None:
    active = {"recall@20": 0.4}
    assert _gate({"recall@20": 0.38}, active, 0.95)["passed"]  # 0.38 >= 0.95 x 0.4
    assert not _gate({"recall@20": 0.379}, active, 0.95)["passed"]
    assert _gate({"recall@20": 0.01}, None, 0.95)["passed"]  # nothing to compare with
    assert not _gate({"recall@20": 0.0}, None, 0.95)["passed"]  # but it must score at all
    assert not _gate({"recall@20": 0.0}, {"recall@20": 0.0}, 0.95)["passed"]


# ---- the pipeline, on the generated demo shop -------------------------------------------------


def demo_log(n_sessions: int = 1500) -> pd.DataFrame:
    from training.data.demo import demo_dataset

    ds = demo_dataset()
    sess = ds.parts["train"]
    sess = sess.select(np.arange(sess.n_sessions) < n_sessions)
    row = np.repeat(np.arange(sess.n_sessions), sess.lengths)
    return pd.DataFrame(
        {
            "session_id": row.astype(str),
            "item_id": ds.items.ids[sess.items].astype(str),
            "ts": 1e9 + row + np.arange(len(row)) * 1e-4,
        }
    )


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("gru4rec", {"n_epochs": 1}),
        ("comirec-sa", {"max_iter": 60}),
        ("sasrec", {"epochs": 2, "dim": 16}),
    ],
)
def test_retrain_writes_a_servable_checkpoint_and_gates_it(
    tmp_path, kind, params, one_torch_thread
):
    from app.serving.registry import load_serving_model
    from training.checkpoint import read_manifest
    from training.retrain import RetrainConfig, retrain

    log = demo_log()
    first = retrain(log, tmp_path, RetrainConfig(params={"n_epochs": 1}, min_item_support=1))
    assert first.passed and first.metrics["active"] is None
    cfg = RetrainConfig(kind=kind, params=params, min_item_support=1, gate_ratio=0.5)
    out = retrain(log, tmp_path, cfg, active_version=first.version)
    manifest = read_manifest(tmp_path, out.version)
    assert manifest["kind"] == kind and manifest["gate"] == out.metrics["gate"]
    active = out.metrics["active"]["recall@20"]
    assert active == pytest.approx(first.metrics["candidate"]["recall@20"])  # same hold-out
    assert out.passed == (out.metrics["candidate"]["recall@20"] >= 0.5 * active)
    served = load_serving_model(tmp_path, out.version, Settings(model_dir=tmp_path))
    assert served.item_ids[0] == str(served.item_ids[0])  # ids as the service logs them
    strict_cfg = RetrainConfig(kind=kind, params=params, min_item_support=1, gate_ratio=100.0)
    strict = retrain(log, tmp_path, strict_cfg, active_version=first.version)
    assert not strict.passed


def test_retrain_refuses_a_log_too_small_to_train(tmp_path: Path) -> None:
    from training.retrain import RetrainConfig, retrain
    from training.retrain.pipeline import NothingToTrain

    log = _frame([("a", "1", 1), ("a", "2", 2)])
    with pytest.raises(NothingToTrain, match="log more events"):
        retrain(log, tmp_path, RetrainConfig(min_item_support=5))
