"""GRU4Rec TSV export: what nextitem trains on, written for other tools and read back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import needs_shared_data, run_cli
from training.cli import app
from training.data import load_dataset
from training.data.errors import DataError
from training.data.export import export_gru4rec, part_events
from training.data.sessions import Dataset, ItemTable, Sessions


def _sessions(groups: list[list[int]], times: list[float] | None = None) -> Sessions:
    offsets = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
    items = np.array([i for g in groups for i in g], dtype=np.int32)
    return Sessions(
        items=items, offsets=offsets, times=None if times is None else np.array(times, np.float64)
    )


def _untimed() -> Dataset:
    """Three items with external ids 30, 10, 20; no timestamps, as diginetica's files."""
    return Dataset(
        name="tiny",
        kind="session",
        items=ItemTable(ids=np.array([30, 10, 20])),
        parts={"train": _sessions([[0, 1], [2, 0, 1]]), "test": _sessions([[1, 2]])},
        targets={"test": np.array([1])},
    )


def test_untimed_parts_get_positions_as_time_and_external_ids() -> None:
    frame = part_events(_untimed(), "train")
    assert frame.to_dict("list") == {
        "SessionId": [0, 0, 1, 1, 1],
        "ItemId": [30, 10, 20, 30, 10],
        "Time": [0, 1, 2, 3, 4],
    }


def test_timed_parts_keep_their_times() -> None:
    ds = _untimed()
    ds.parts["train"] = _sessions([[0, 1], [2]], times=[100.0, 105.5, 90.0])
    assert part_events(ds, "train")["Time"].tolist() == [100.0, 105.5, 90.0]
    ds.parts["train"] = _sessions([[0, 1], [2]], times=[100.0, 105.0, 90.0])
    assert part_events(ds, "train")["Time"].dtype == np.int64  # whole seconds stay integers


def test_export_round_trips_through_the_gru4rec_reader(tmp_path: Path) -> None:
    files, custom = export_gru4rec(_untimed(), tmp_path)
    assert [f.name for f in files] == ["tiny_train_full.tsv", "tiny_test.tsv"]
    assert custom == ["test"]  # its targets are not every non-first event: the caller warns
    back = load_dataset(f"gru4rec:{tmp_path}")
    for part, want in {"train": [[30, 10], [20, 30, 10]], "test": [[10, 20]]}.items():
        s = back.part(part)
        got = [back.items.ids[s.session(i)].tolist() for i in range(s.n_sessions)]
        assert got == want


def test_only_session_data_is_exported(tmp_path: Path) -> None:
    ds = dataclasses.replace(_untimed(), kind="rating")
    with pytest.raises(DataError, match="only session data"):
        export_gru4rec(ds, tmp_path)


@needs_shared_data
def test_cli_export_of_a_shared_dataset_reads_back_event_for_event(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "export", "yoochoose-100k", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    original, back = load_dataset("yoochoose-100k"), load_dataset(f"gru4rec:{tmp_path}")
    for part in ("train", "test", "train_tr", "valid"):
        a, b = original.part(part), back.part(part)
        np.testing.assert_array_equal(a.offsets, b.offsets)
        np.testing.assert_array_equal(original.items.ids[a.items], back.items.ids[b.items])
    header = pd.read_csv(tmp_path / "yoochoose-100k_test.tsv", sep="\t", nrows=1)
    assert list(header.columns) == ["SessionId", "ItemId", "Time"]


@needs_shared_data
def test_cli_refuses_rating_data_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    assert run_cli(["data", "export", "ml-100k", "--out", str(tmp_path)], monkeypatch) == 2
    err = capsys.readouterr().err
    assert "only session data" in err and "Traceback" not in err
