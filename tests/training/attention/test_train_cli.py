"""``nextitem train sasrec`` end to end on a file of user sequences, and what the loop learns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.registry import build_model
from tests.conftest import run_cli
from training.attention.data import leave_one_out
from training.attention.evaluate import evaluate
from training.attention.export import build
from training.attention.train import TrainConfig, train
from training.checkpoint import current_version, load_checkpoint
from training.data import load_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N_ITEMS = 30


def write_runs(path: Path, users: int = 300, seed: int = 0) -> Path:
    """Users who click runs of consecutive items (i, i + 1, ... mod 30): the next item is
    always the last one plus one, which a sequence model must learn from positions."""
    rng = np.random.default_rng(seed)
    lines = []
    for u in range(users):
        start, length = rng.integers(N_ITEMS), rng.integers(5, 12)
        items = (start + np.arange(length)) % N_ITEMS + 1  # the file's ids start at 1
        lines.append(" ".join(map(str, [u + 1, *items])))
    path.write_text("\n".join(lines) + "\n")
    return path


SMALL = {"dim": 16, "max_len": 10, "dropout": 0.1}


@pytest.mark.parametrize(
    "loop",
    [
        {"loss": "bce"},
        {"loss": "full"},
        {"loss": "sampled", "negatives": 8},
        {"loss": "sampled", "negatives": 8, "negatives_per": "batch", "sampling": "popularity"},
        {"loss": "sampled", "negatives": 8, "length_groups": 4},
    ],
)
def test_every_loss_learns_what_comes_next(tmp_path: Path, loop: dict) -> None:
    data = leave_one_out(load_dataset(f"amazon-seq:{write_runs(tmp_path / 'runs.txt')}"))
    model = build("sasrec", data.n_items, SMALL, seed=1)
    assert_learns(model, data, loop)


@pytest.mark.parametrize("loop", [{"loss": "full"}, {"loss": "sampled", "negatives": 8}])
def test_bert4rec_learns_what_comes_next_by_the_cloze_task(tmp_path: Path, loop: dict) -> None:
    data = leave_one_out(load_dataset(f"amazon-seq:{write_runs(tmp_path / 'runs.txt')}"))
    model = build("bert4rec", data.n_items, {**SMALL, "mask_prob": 0.3}, seed=1)
    assert_learns(model, data, {**loop, "epochs": 40})


def test_ecl_sr_learns_what_comes_next(tmp_path: Path) -> None:
    data = leave_one_out(load_dataset(f"amazon-seq:{write_runs(tmp_path / 'runs.txt')}"))
    params = {**SMALL, "contrastive_k": 3, "attention_dropout": 0.1}
    model = build("ecl-sr", data.n_items, params, seed=1)
    assert_learns(model, data, {"loss": "full", "epochs": 30})


def test_cl4srec_learns_what_comes_next(tmp_path: Path) -> None:
    data = leave_one_out(load_dataset(f"amazon-seq:{write_runs(tmp_path / 'runs.txt')}"))
    params = {**SMALL, "contrastive_weight": 0.1}
    model = build("cl4srec", data.n_items, params, seed=1)
    assert_learns(model, data, {"loss": "full", "epochs": 30})


def assert_learns(model, data, loop: dict) -> None:
    before = evaluate(model, data.valid)[1]["hitrate@5"]
    cfg = TrainConfig(
        **{"batch_size": 32, "lr": 5e-3, "epochs": 25, "patience": 25, "seed": 1, **loop}
    )
    result = train(model, data, cfg, progress=False)
    assert before < 0.5  # about 5 in 30 by chance
    assert result.best_valid["hitrate@5"] > 0.9
    assert evaluate(model, data.valid)[1] == result.best_valid  # the best weights came back
    assert [p["epoch"] for p in result.curve] == list(range(1, result.epochs + 1))


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    data = leave_one_out(load_dataset(f"amazon-seq:{write_runs(tmp_path / 'runs.txt')}"))
    model = build("sasrec", data.n_items, SMALL, seed=1)
    cfg = TrainConfig(batch_size=32, lr=5e-3, epochs=200, patience=2, seed=1, loss="full")
    result = train(model, data, cfg, progress=False)
    assert result.stopped == "early_stopping" and result.epochs < 200
    best = max(p["ndcg@10"] for p in result.curve)
    assert result.best_valid["ndcg@10"] == best
    assert result.epochs == result.best_epoch + 2


def test_train_command_writes_a_checkpoint_a_record_and_the_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_file = write_runs(tmp_path / "runs.txt")
    out, record_file = tmp_path / "models", tmp_path / "run.json"
    params = "dim=16,max_len=10,epochs=3,batch_size=32,negatives=8"
    args = ["train", "sasrec", "--dataset", f"amazon-seq:{data_file}", "--params", params]
    args += ["--out", str(out), "--json", str(record_file), "--activate", "--seed", "3"]
    assert run_cli(args, monkeypatch) == 0
    rec = json.loads(record_file.read_text())
    assert rec["protocol"] == "leave-one-out" and rec["ranking"] == "seen items removed"
    assert rec["metrics"] == rec["metrics_seen_removed"]
    assert {"hitrate@10", "ndcg@10", "hitrate@5", "ndcg@20"} <= set(rec["metrics"])
    assert rec["params"]["dim"] == 16 and rec["params"]["loss"] == "full"
    assert rec["params"]["n_blocks"] == 1  # the kind's defaults under the given keys
    version = out / current_version(out)
    assert (version / "training.png").stat().st_size > 1000
    ck = load_checkpoint(version)
    model = build_model(ck.kind, ck.hyperparameters, ck.weights)
    assert len(ck.items) == N_ITEMS
    # the record's test figures are what the written model scores on the test histories
    data = leave_one_out(load_dataset(f"amazon-seq:{data_file}"))
    again = evaluate(model, data.test)[1]
    assert again == pytest.approx(rec["metrics"])
    with torch.no_grad():  # and it serves: a click at a time through the contract
        state = model.init_state()
        for item in (3, 4, 5):
            state = model.step(state, item)
        assert model.interests(state).shape == (1, 16)


def test_an_unknown_parameter_is_refused_before_any_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_file = write_runs(tmp_path / "runs.txt", users=20)
    args = ["train", "sasrec", "--dataset", f"amazon-seq:{data_file}", "--params", "heads=2"]
    assert run_cli([*args, "--out", str(tmp_path / "m")], monkeypatch) == 2
    assert "unknown sasrec parameter" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"stop_metric": "recall@50"}, "stop_metric"),
        ({"loss": "bpr"}, "loss"),
        ({"negatives_per": "user"}, "negatives_per"),
        ({"length_groups": -1}, "length_groups"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_a_bad_loop_setting_says_what_is_wrong(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)
