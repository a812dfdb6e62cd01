"""The SASRec-against-RecBole benchmark's own parts: the data it hands RecBole, its log reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.bench.sasrec_recbole import parse_log, time_to_reach, write_atomic
from training.data.formats.amazon import load_amazon_seq


def test_atomic_file_keeps_each_users_order_and_counts_training_pairs(tmp_path: Path) -> None:
    src = tmp_path / "seq.txt"
    src.write_text("1 10 11 12 13\n2 11 10 14\n")
    ds = load_amazon_seq(src)
    pairs = write_atomic(ds, tmp_path / "bench")
    rows = (tmp_path / "bench" / "bench.inter").read_text().splitlines()
    assert rows[0] == "user_id:token\titem_id:token\ttimestamp:float"
    table = np.array([[int(v) for v in r.split("\t")] for r in rows[1:]])
    # user 0 clicked 10, 11, 12, 13 at positions 0..3; user 1 clicked 11, 10, 14
    assert table.tolist() == [
        [0, 10, 0],
        [0, 11, 1],
        [0, 12, 2],
        [0, 13, 3],
        [1, 11, 0],
        [1, 10, 1],
        [1, 14, 2],
    ]
    # leave-one-out trains on all but the last two: 10 -> 11 for user 0, nothing for user 1
    assert pairs == 1


def test_log_lines_with_colour_codes_are_read() -> None:
    log = (
        "07 Dec 18:26 INFO \x1b[1;32mepoch 0 training\x1b[0m [\x1b[1;34mtime\x1b[0m: 307.92s, "
        "\x1b[1;34mtrain loss\x1b[0m: 8715.8765]\n"
        "07 Dec 18:26 INFO \x1b[1;32mepoch 0 evaluating\x1b[0m [\x1b[1;34mtime\x1b[0m: 20.87s, "
        "\x1b[1;34mvalid_score\x1b[0m: 0.026200]\n"
        "INFO epoch 1 training [time: 300.00s, train loss: 8000.0]\n"
        "INFO epoch 1 evaluating [time: 20.00s, valid_score: 0.031000]\n"
    )
    train_s, evals = parse_log(log)
    assert train_s == [307.92, 300.0]
    assert evals == [(20.87, 0.0262), (20.0, 0.031)]


def test_time_to_reach_is_the_first_point_at_or_above() -> None:
    curve = [
        {"seconds": 10.0, "ndcg@10": 0.02},
        {"seconds": 20.0, "ndcg@10": 0.05},
        {"seconds": 30.0, "ndcg@10": 0.04},
    ]
    assert time_to_reach(curve, 0.03) == 20.0
    assert time_to_reach(curve, 0.05) == 20.0
    assert time_to_reach(curve, 0.06) is None
