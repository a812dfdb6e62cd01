"""The ComiRec preprocessing of ml-1m, the train command's errors, and a short learning run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.comirec import ComiRecSA, MultiInterestConfig
from tests.conftest import needs_shared_data, run_cli
from training.comirec.data import prepare, sequence_part
from training.comirec.evaluate import holdout_prefixes
from training.comirec.train import TrainConfig, train
from training.data import load_dataset
from training.evaluation.multi_interest import topn_metrics
from training.paths import data_dir

SPLIT = "ml-1m/comirec_user_split_seed1230.tsv"


@pytest.fixture(scope="module")
def ml1m():
    return prepare(load_dataset("ml-1m"), data_dir() / SPLIT)


@needs_shared_data
def test_ml1m_counts_match_the_official_preprocessing(ml1m) -> None:
    # The figures of the published comparison: items and users with < 5 ratings dropped.
    assert (ml1m.sequences.n_events, ml1m.sequences.n_sessions, ml1m.n_items) == (
        486_907,
        2_999,
        3_266,
    )
    assert [len(ml1m.split.train), len(ml1m.split.valid), len(ml1m.split.test)] == [
        2_399,
        300,
        300,
    ]
    # re-indexed by descending count: row 0 is the most rated movie
    assert np.all(np.diff(ml1m.popularity) <= 0)
    assert np.bincount(ml1m.sequences.items, minlength=ml1m.n_items).tolist() == list(
        ml1m.popularity
    )
    # first listed genre as the category: American Beauty (2858) is "Comedy|Drama"
    row = int(np.flatnonzero(ml1m.item_ids == 2858)[0])
    assert row == 0 and ml1m.categories is not None and ml1m.categories[row] == 4


@needs_shared_data
def test_unknown_parameter_is_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["train", "comirec-sa", "--dataset", "ml-100k", "--params", "heads=2"]
    assert run_cli([*args, "--out", str(tmp_path)], monkeypatch) == 2
    assert "unknown comirec-sa parameter" in capsys.readouterr().err


@needs_shared_data
def test_train_command_min_count_sets_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.checkpoint import current_version, load_checkpoint

    ds = load_dataset("ml-100k")
    raw = ds.part(sequence_part(ds))
    counts = np.bincount(raw.items, minlength=ds.n_items)
    base = ["train", "comirec-sa", "--dataset", "ml-100k", "--seed", "1", "--activate"]
    base += ["--params", "max_iter=2,eval_every=2,dim=8,max_len=10,batch_size=8"]
    sizes = {}
    for min_count in (1, 5):
        out = tmp_path / str(min_count)
        assert run_cli([*base, "--min-count", str(min_count), "--out", str(out)], monkeypatch) == 0
        sizes[min_count] = len(load_checkpoint(out / current_version(out)).items)
    assert sizes[1] == int((counts >= 1).sum())  # every rated movie stays servable
    assert sizes[5] < sizes[1]


@pytest.mark.slow
@needs_shared_data
def test_short_training_beats_popularity(ml1m) -> None:
    """2,000 iterations of ComiRec-SA already rank better than the most popular movies.

    Reference run (same settings): validation Recall@50 0.156 at iteration 2,000,
    popularity 0.128; 400 iterations with the sampled loss were not enough (0.122).
    """
    model = ComiRecSA(MultiInterestConfig(n_items=ml1m.n_items, max_len=50, seed=1230))
    cfg = TrainConfig(max_iter=2000, eval_every=1000, loss="full", seed=1230)
    result = train(model, ml1m, cfg, progress=False)
    _, split = holdout_prefixes(ml1m, ml1m.split.valid, 50)
    pop = np.tile(np.arange(50), (split.targets.n_sessions, 1))  # rows are ranked by count
    popular = topn_metrics(pop, split.targets, None, (50,))
    assert result.best_valid["recall@50"] > popular["recall@50"]


def test_a_session_dataset_trains_as_sequences() -> None:
    """A shop's click log (sessions) feeds the multi-interest models: one sequence per session."""
    from training.comirec.data import sequence_part
    from training.data.demo import demo_dataset

    ds = demo_dataset()
    assert sequence_part(ds) == "train"
    data = prepare(ds, seed=0, min_count=5)
    train_part = ds.parts["train"]
    assert data.sequences.n_sessions == int((train_part.lengths >= 5).sum())
    assert set(data.item_ids.tolist()) <= set(ds.items.ids.tolist())


@needs_shared_data
def test_evaluate_greedy_sweep_writes_record_and_plot_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    out = tmp_path / "models"
    train = ["train", "comirec-sa", "--dataset", "ml-100k", "--seed", "1", "--activate"]
    train += ["--params", "max_iter=20,eval_every=20,dim=8,max_len=10,batch_size=16"]
    assert run_cli([*train, "--out", str(out)], monkeypatch) == 0
    record = tmp_path / "sweep" / "valid.json"
    evaluate = ["evaluate", "--model", "comirec-sa", "--dataset", "ml-100k", "--seed", "1"]
    evaluate += ["--checkpoint", str(out), "--aggregator", "greedy", "--lambda", "0,0.5"]
    args = [*evaluate, "--params", "users=valid", "--json", str(record)]
    assert run_cli(args, monkeypatch) == 0
    rec = json.loads(record.read_text())
    assert rec["users"] == "valid" and [s["lambda"] for s in rec["sweep"]] == [0.0, 0.5]
    assert Path(rec["plot"]) == record.with_suffix(".png") and record.with_suffix(".png").is_file()
    # greedy at lambda = 0 is the max-score aggregator; a positive lambda diversifies
    plain = tmp_path / "max.json"
    max_args = [*evaluate[:-4], "--aggregator", "max", "--params", "users=valid"]
    assert run_cli([*max_args, "--json", str(plain)], monkeypatch) == 0
    at_zero = {k: v for k, v in rec["sweep"][0].items() if k != "lambda"}
    assert at_zero == json.loads(plain.read_text())["metrics"]
    assert rec["sweep"][1]["diversity@50"] > rec["sweep"][0]["diversity@50"]
    assert run_cli([*evaluate, "--params", "users=train"], monkeypatch) == 2
