"""Loaders on small generated files: layouts, preprocessing, and clear errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training.data import DatasetNotFound, MalformedFile, UnknownFormat, load_dataset
from training.data.formats.events import Columns, load_events
from training.data.formats.srgnn import load_srgnn
from training.data.preprocess import PreprocessConfig


def rows(s, n=None):
    return [s.session(i).tolist() for i in range(s.n_sessions if n is None else n)]


def write_srgnn(folder: Path, rows_text: str, min_prefix: int = 1) -> None:
    folder.mkdir()
    (folder / "train_sessions.txt").write_text("1 2\n3 4 5\n2 3\n")
    test = [[1, 2, 3], [4, 5, 3, 2]]
    (folder / "test_sessions.txt").write_text("\n".join(" ".join(map(str, s)) for s in test) + "\n")
    (folder / "test_prefix_target.tsv").write_text(rows_text)


def augment(sessions: list[list[int]], min_prefix: int) -> str:
    out = []
    for s in sessions:
        for i in range(1, len(s) - min_prefix + 1):
            out.append(" ".join(map(str, s[:-i])) + "\t" + str(s[-i]))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("min_prefix", [1, 2])
def test_srgnn_targets_reproduce_published_rows(tmp_path: Path, min_prefix: int) -> None:
    folder = tmp_path / "d"
    write_srgnn(folder, augment([[1, 2, 3], [4, 5, 3, 2]], min_prefix))
    ds = load_srgnn(folder)
    test = ds.part("test")
    # item index = order of first appearance in train: 1->0, 2->1, 3->2, 4->3, 5->4
    assert ds.items.ids.tolist() == [1, 2, 3, 4, 5]
    assert rows(test) == [[0, 1, 2], [3, 4, 2, 1]]
    expected = {1: [2, 1, 6, 5, 4], 2: [2, 6, 5]}[min_prefix]
    assert ds.targets["test"].tolist() == expected


def test_srgnn_rows_without_sessions_become_sessions(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "train_sessions.txt.gz").write_bytes(gzip.compress(b"1 2\n2 3\n"))
    (folder / "test_prefix_target.tsv").write_text("1 2\t3\n1\t2\n")
    ds = load_srgnn(folder)
    assert rows(ds.part("test")) == [[0, 1, 2], [0, 1]]
    assert ds.targets["test"].tolist() == [2, 4]


def test_srgnn_malformed_line_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "train_sessions.txt").write_text("1 2\n3 x 5\n")
    (folder / "test_prefix_target.tsv").write_text("1\t2\n")
    with pytest.raises(MalformedFile, match=r"train_sessions.txt, line 2: .*'x'"):
        load_srgnn(folder)


def test_srgnn_row_without_tab(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "train_sessions.txt").write_text("1 2\n")
    (folder / "test_prefix_target.tsv").write_text("1\t2\n1 2\n")
    with pytest.raises(MalformedFile, match="line 2"):
        load_srgnn(folder)


def click_log(tmp_path: Path) -> Path:
    """Sessions a..e over three days. Item 9 is rare (support 1); e's only click is on 9."""
    day = 86400
    data = [
        ("a", 1, 0), ("a", 2, 10), ("a", 3, 20),
        ("b", 1, 100), ("b", 2, 110), ("b", 9, 120),
        ("c", 3, 200), ("c", 1, 210), ("c", 2, 220),
        ("d", 2, 2 * day + 5), ("d", 3, 2 * day + 6), ("d", 4, 2 * day + 7),
        ("e", 9, 300),
    ]  # fmt: skip
    df = pd.DataFrame(data, columns=["session_id", "item_id", "timestamp"])
    path = tmp_path / "log.csv"
    df.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # order must not matter
    return path


def test_events_gru4rec_preprocessing_by_hand(tmp_path: Path) -> None:
    cfg = PreprocessConfig(min_item_support=2, test_days=1.0)
    ds = load_events(click_log(tmp_path), cfg=cfg)
    # Item 9 (support 2 counting e, but e has length 1 and goes first) -> support 1 -> dropped;
    # item 4 has support 1 -> dropped; then d = [2, 3] is the only session ending in the last day.
    train, test = ds.part("train"), ds.part("test")
    assert ds.items.ids.tolist() == [1, 2, 3]
    assert train.keys.tolist() == ["a", "b", "c"]
    assert rows(train) == [[0, 1, 2], [0, 1], [2, 0, 1]]
    assert test.keys.tolist() == ["d"] and rows(test) == [[1, 2]]


def test_events_parquet_and_custom_columns(tmp_path: Path) -> None:
    df = pd.read_csv(click_log(tmp_path)).rename(columns={"session_id": "visit", "item_id": "sku"})
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="s", utc=True).astype(str)
    path = tmp_path / "log.parquet"
    df.to_parquet(path)
    ds = load_events(
        path, Columns(session="visit", item="sku"), PreprocessConfig(min_item_support=2)
    )
    assert ds.part("train").n_sessions == 3


def test_events_bad_time_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("session_id,item_id,timestamp\n1,2,2020-01-01\n1,3,yesterday\n")
    with pytest.raises(MalformedFile, match="line 3"):
        load_events(path)


def test_events_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("sess,item_id,timestamp\n1,2,3\n")
    with pytest.raises(MalformedFile, match="missing columns"):
        load_events(path)


def test_format_prefix_errors(tmp_path: Path) -> None:
    with pytest.raises(UnknownFormat, match="known formats"):
        load_dataset(f"csvish:{tmp_path}")
    with pytest.raises(DatasetNotFound):
        load_dataset(f"events:{tmp_path / 'nope.csv'}")
    with pytest.raises(DatasetNotFound, match="known names"):
        load_dataset("no-such-dataset")


def test_amazon_seq_format(tmp_path: Path) -> None:
    path = tmp_path / "seq.txt"
    path.write_text("1 5 6 7\n2 6 8\n")
    ds = load_dataset(f"amazon-seq:{path}")
    seqs = ds.part("all")
    assert ds.items.ids.tolist() == [5, 6, 7, 8]
    assert seqs.keys.tolist() == [1, 2] and rows(seqs) == [[0, 1, 2], [1, 3]]


def test_gru4rec_folder(tmp_path: Path) -> None:
    header = "SessionId\tItemId\tTime\n"
    (tmp_path / "x_train_full.txt").write_text(header + "1\t10\t1\n1\t11\t2\n2\t11\t3\n2\t12\t4\n")
    # Item 99 is unseen in training: dropped, and session 4 becomes too short.
    (tmp_path / "x_test.txt").write_text(header + "3\t12\t9\n3\t10\t10\n4\t99\t11\n4\t10\t12\n")
    ds = load_dataset(f"gru4rec:{tmp_path}")
    assert ds.items.ids.tolist() == [10, 11, 12]
    assert rows(ds.part("test")) == [[2, 0]]
    assert np.allclose(ds.part("train").times, [1, 2, 3, 4])


@pytest.mark.parametrize("prefix", ["", "latest_"])
def test_gru4rec_folder_finds_split_files_with_or_without_a_name(
    tmp_path: Path, prefix: str
) -> None:
    """``test`` inside a name (``latest_train_full``) is not the test file."""
    header = "SessionId\tItemId\tTime\n"
    (tmp_path / f"{prefix}train_full.tsv").write_text(header + "1\t10\t1\n1\t11\t2\n")
    (tmp_path / f"{prefix}test.tsv").write_text(header + "2\t11\t3\n2\t10\t4\n")
    ds = load_dataset(f"gru4rec:{tmp_path}")
    assert rows(ds.part("train")) == [[0, 1]]
    assert rows(ds.part("test")) == [[1, 0]]
