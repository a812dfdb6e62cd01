"""``nextitem evaluate --model sknn|vsknn|stan``: parameters, the data's clock, the record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.session_knn import STAN, VSKNN, SKNNConfig
from tests.conftest import needs_shared_data, run_cli
from training.data.sessions import Sessions
from training.params import ParamError, read_params
from training.session_knn import KNN_MODELS, knn_setup

TRAIN = ["1 2 3", "2 3 4 5", "1 3 5", "4 5 6", "1 2", "3 6 2", "5 6 1 2", "2 4"]
TEST = ["1 2 3 4", "5 6 5", "2 3"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A tiny SR-GNN folder: sessions in time order, no timestamps."""
    (tmp_path / "train_sessions.txt").write_text("\n".join(TRAIN) + "\n")
    (tmp_path / "test_sessions.txt").write_text("\n".join(TEST) + "\n")
    return tmp_path


@pytest.mark.parametrize("name", sorted(KNN_MODELS))
def test_the_bundled_files_are_the_config_defaults(name: str) -> None:
    model_cls, config_cls = KNN_MODELS[name]
    assert knn_setup(name, {}).config == config_cls() == model_cls().config


def test_parameters_are_checked_before_the_data() -> None:
    assert knn_setup("vsknn", {"k": "50", "weighting": "quadratic"}).config.k == 50
    tuned = knn_setup("stan", read_params("stan_diginetica_tuned"))
    assert (tuned.config.k, tuned.config.lambda_2, tuned.sessions_per_day) == (200, 80.0, 1280.0)
    with pytest.raises(ParamError, match="k must be at least 1"):
        knn_setup("sknn", {"k": 0})
    with pytest.raises(ParamError, match="unknown"):
        knn_setup("sknn", {"lambda_1": 1.0})
    with pytest.raises(ParamError, match="sessions_per_day"):
        knn_setup("stan", {"sessions_per_day": -3})


def test_the_clock_is_days_from_times_or_from_the_file_order() -> None:
    offsets = np.array([0, 2, 3], np.int64)
    items = np.array([0, 1, 2], np.int32)
    timed = Sessions(items, offsets, times=np.array([0.0, 86400.0, 3 * 86400.0]))
    assert knn_setup("stan", {}).clock(timed).tolist() == [1.0, 3.0]  # last clicks
    untimed = Sessions(items, offsets)
    assert knn_setup("stan", {"sessions_per_day": 2}).clock(untimed).tolist() == [0.0, 0.5]
    assert knn_setup("sknn", {}).clock(untimed) is None  # the row order
    with pytest.raises(ParamError, match="sessions_per_day"):
        knn_setup("stan", {}).clock(untimed)


def test_evaluate_vsknn_by_repeat_writes_the_record(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "vsknn.json"
    args = ["evaluate", "--model", "vsknn", "--dataset", f"srgnn:{folder}", "--k", "1,5"]
    assert run_cli([*args, "--params", "k=3", "--by-repeat", "--json", str(out)], monkeypatch) == 0
    rec = json.loads(out.read_text())
    assert rec["model"] == "vsknn" and rec["protocol"] == "next-item"
    assert rec["params"]["k"] == 3 and rec["params"]["weighting"] == "div"
    assert rec["params"]["cutoffs"] == [1, 5]
    # 6 targets, one of them (5 after 5 6) clicked before in its session
    assert rec["data"]["predictions"] == 6 and rec["metrics"]["repeat_share"] == pytest.approx(
        1 / 6
    )
    assert {"recall@5_repeat", "mrr@5_new"} <= set(rec["metrics"])


def test_stan_needs_a_clock_in_days(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["evaluate", "--model", "stan", "--dataset", f"srgnn:{folder}"]
    assert run_cli(args, monkeypatch) == 2
    assert "sessions_per_day" in capsys.readouterr().err
    out = tmp_path / "stan.json"
    clock = ["--params", "stan_diginetica", "--params", "k=2"]
    assert run_cli([*args, *clock, "--json", str(out)], monkeypatch) == 0
    rec = json.loads(out.read_text())
    assert rec["params"]["sessions_per_day"] == 1280 and rec["params"]["k"] == 2


def test_validation_split_reads_no_test_part(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "valid.json"
    args = ["evaluate", "--model", "sknn", "--dataset", f"srgnn:{folder}", "--json", str(out)]
    assert run_cli([*args, "--valid-fraction", "0.25", "--test-part", "nope"], monkeypatch) == 0
    rec = json.loads(out.read_text())
    assert rec["protocol"] == "next-item (validation)" and "validation" in rec["data"]
    assert rec["data"]["predictions"] == 4  # the last 2 of 8 sessions: 5 6 1 2 and 2 4


def test_by_repeat_is_for_next_item_models(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    args = ["evaluate", "--model", "comirec-sa", "--dataset", "ml-1m", "--by-repeat"]
    assert run_cli(args, monkeypatch) == 2
    assert "next-item" in capsys.readouterr().err


@needs_shared_data
def test_stan_on_timestamped_data_uses_the_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "stan.json"
    args = ["evaluate", "--model", "stan", "--dataset", "yoochoose-100k", "--json", str(out)]
    assert run_cli(args, monkeypatch) == 0
    rec = json.loads(out.read_text())
    assert "sessions_per_day" not in rec["params"] and 0.3 < rec["metrics"]["recall@20"] < 1


def test_configs_are_the_models_own() -> None:
    assert isinstance(VSKNN().config, SKNNConfig) and STAN().config.sample_size == 5000
