"""CL4SRec with CoSeRec's augmentations: the loop hands it the item similarity of the
training sequences, and the checkpoint leaves that table out."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.cl4srec import CL4SRec
from models.item_similarity import most_similar_items
from tests.training.attention.test_train_cli import N_ITEMS, SMALL, write_runs
from training.attention.data import leave_one_out
from training.attention.export import build
from training.attention.train import TrainConfig, train
from training.data import load_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_training_builds_the_similarity_of_the_training_sequences(tmp_path: Path) -> None:
    data = leave_one_out(load_dataset(f"amazon-seq:{write_runs(tmp_path / 'runs.txt', 60)}"))
    model = build("cl4srec", data.n_items, {**SMALL, "augmentations": "coserec"}, seed=1)
    assert isinstance(model, CL4SRec) and len(model.similar) == 0
    cfg = TrainConfig(batch_size=32, epochs=2, loss="full", seed=1)
    result = train(model, data, cfg, progress=False)
    expected = most_similar_items(data.train.items, data.train.offsets, data.n_items)
    assert torch.equal(model.similar, expected)
    # users click runs i, i + 1, ...: an item's most similar is one of its two neighbours
    ids = data.item_ids.astype(int)  # the file's ids, 1 to 30
    for row, other in enumerate(model.similar.tolist()):
        assert (ids[other] - ids[row]) % N_ITEMS in (1, N_ITEMS - 1)
    assert all(math.isfinite(p["loss_contrastive"]) for p in result.curve)
    assert "similar" not in model.checkpoint_weights()  # rebuilt from the data, not kept


def test_coserec_augmentations_need_the_training_sequences() -> None:
    model = build("cl4srec", 5, {**SMALL, "augmentations": "coserec"}, seed=1)
    window = torch.tensor([[-1, 0, 1, 2]])
    with pytest.raises(RuntimeError, match="set_training_sequences"):
        model.training_pairs(window[:, :-1], window[:, 1:], torch.Generator())
    model.set_training_sequences(np.array([0, 1, 2], dtype=np.int32), np.array([0, 3]))
    pairs = model.training_pairs(window[:, :-1], window[:, 1:], torch.Generator())
    assert torch.isfinite(pairs.extra["contrastive"])


def test_an_insert_grows_a_short_window_up_to_max_len() -> None:
    """CoSeRec pads every view to max_len: a batch of three items may come back with six."""
    params = {**SMALL, "augmentations": "coserec", "insert_rate": 1.0, "mask": 0.0}
    model = build("cl4srec", 5, params, seed=1)
    model.set_training_sequences(np.array([0, 1, 2, 3], dtype=np.int32), np.array([0, 4]))
    window = torch.tensor([[0, 1, 2]]).expand(64, 3)
    views = model.augment(window, torch.Generator().manual_seed(0))
    assert views.shape == (64, SMALL["max_len"])
    assert ((views >= 0).sum(1) == 6).any()  # insert: 3 items and their 3 similar ones
